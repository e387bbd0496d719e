package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"text/tabwriter"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/wijtechniek/wijgate/caddymodule"
	"github.com/wijtechniek/wijgate/caddymodule/token"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "eherkenning",
		Usage: "keys list|add|activate|retire [--config <file>] [--address <admin>] [--storage <dir>]",
		Short: "Rolls the eHerkenning service provider's keys",
		Long: `
Rolls the key pair wijgate signs its eHerkenning messages with and that
brokers encrypt the identifiers to. A new key is first published in our
SP metadata next to the current one (add), then signs once the brokers
have fetched that metadata (activate); the old key stays published and
decrypts until it is retired (retire).

The key set lives in the store, so every server on it follows a change
within a minute. The command talks to a running server like 'wijgate
accounts' does, or opens the store when none runs.

  wijgate eherkenning keys list
  wijgate eherkenning keys add                        (generates a pair)
  wijgate eherkenning keys add --cert F --key F       (a PKIoverheid certificate)
  wijgate eherkenning keys activate [--force]
  wijgate eherkenning keys retire [--fingerprint FP]
`,
		CobraFunc: func(cmd *cobra.Command) {
			addOperatorFlags(cmd)
			keys := &cobra.Command{Use: "keys", Short: "Lists, adds, activates and retires the service provider's keys"}

			list := &cobra.Command{
				Use:   "list",
				Short: "Lists the keys: role, fingerprint, not-after, published since",
				RunE: func(c *cobra.Command, _ []string) error {
					return keysCommand(c, http.MethodGet, "/wijgate/eherkenning/keys", nil,
						func(k *caddymodule.SPKeys) ([]caddymodule.SPKeySummary, error) { return k.List() })
				},
			}

			add := &cobra.Command{
				Use:   "add [--cert <file> --key <file>]",
				Short: "Publishes a new next key: generated, or a certificate and key from PEM files",
				RunE: func(c *cobra.Command, _ []string) error {
					certFile, _ := c.Flags().GetString("cert")
					keyFile, _ := c.Flags().GetString("key")
					var req caddymodule.SPKeyRequest
					if (certFile == "") != (keyFile == "") {
						return fmt.Errorf("give both --cert and --key (PEM files), or neither to generate a pair")
					}
					if certFile != "" {
						cert, err := os.ReadFile(certFile)
						if err != nil {
							return fmt.Errorf("reading the certificate: %w", err)
						}
						key, err := os.ReadFile(keyFile)
						if err != nil {
							return fmt.Errorf("reading the key: %w", err)
						}
						req.Cert, req.Key = string(cert), string(key)
					}
					return keysCommand(c, http.MethodPost, "/wijgate/eherkenning/keys", req,
						func(k *caddymodule.SPKeys) ([]caddymodule.SPKeySummary, error) { return k.Add(req) })
				},
			}
			add.Flags().String("cert", "", "PEM certificate file (PKIoverheid, RSA ≥ 2048)")
			add.Flags().String("key", "", "PEM private key file of that certificate")

			activate := &cobra.Command{
				Use:   "activate [--force]",
				Short: "Makes the next key sign; the current one stays published and decrypts until retired",
				RunE: func(c *cobra.Command, _ []string) error {
					force, _ := c.Flags().GetBool("force")
					return keysCommand(c, http.MethodPost, "/wijgate/eherkenning/keys/activate", caddymodule.SPKeyRequest{Force: force},
						func(k *caddymodule.SPKeys) ([]caddymodule.SPKeySummary, error) { return k.Activate(force) })
				},
			}
			activate.Flags().Bool("force", false, "Activate a next key published for less than 24 hours")

			retire := &cobra.Command{
				Use:   "retire [--fingerprint <fp>]",
				Short: "Removes the old keys (or the key named) from the metadata and from decryption",
				RunE: func(c *cobra.Command, _ []string) error {
					fp, _ := c.Flags().GetString("fingerprint")
					return keysCommand(c, http.MethodPost, "/wijgate/eherkenning/keys/retire", caddymodule.SPKeyRequest{Fingerprint: fp},
						func(k *caddymodule.SPKeys) ([]caddymodule.SPKeySummary, error) { return k.Retire(fp) })
				},
			}
			retire.Flags().String("fingerprint", "", "Fingerprint of an old or next key (default: every old key)")

			keys.AddCommand(list, add, activate, retire)
			cmd.AddCommand(keys)
		},
	})
}

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "token",
		Usage: "keys list|rotate [--config <file>] [--address <admin>] [--storage <dir>]",
		Short: "Shows and rotates the identity-token (X-Wij-Assertion) keys",
		Long: `
The keys that sign X-Wij-Assertion rotate on their own every 30 days: the
next key is published in /.well-known/jwks.json before it signs, the one
before stays published until the following rotation. 'rotate' rotates now
(say, after a key may have leaked); it is refused while the next key has
been published for less than two minutes, so every replica publishes it
before it signs. Other servers on the store follow within a minute.

  wijgate token keys list
  wijgate token keys rotate
`,
		CobraFunc: func(cmd *cobra.Command) {
			addOperatorFlags(cmd)
			keys := &cobra.Command{Use: "keys", Short: "Lists and rotates the identity-token keys"}
			list := &cobra.Command{
				Use:   "list",
				Short: "Lists the published keys: role, kid, created, signing since",
				RunE: func(c *cobra.Command, _ []string) error {
					return tokenKeysCommand(c, http.MethodGet, "/wijgate/token/keys",
						func(k *caddymodule.TokenKeys) ([]token.KeyInfo, error) { return k.List(), nil })
				},
			}
			rotate := &cobra.Command{
				Use:   "rotate",
				Short: "The next key signs now; a new next key is published",
				RunE: func(c *cobra.Command, _ []string) error {
					return tokenKeysCommand(c, http.MethodPost, "/wijgate/token/keys/rotate",
						func(k *caddymodule.TokenKeys) ([]token.KeyInfo, error) { return k.Rotate() })
				},
			}
			keys.AddCommand(list, rotate)
			cmd.AddCommand(keys)
		},
	})
}

// tokenKeysCommand runs a token key operation through the running
// server's admin API or on the store opened directly, and prints the keys.
func tokenKeysCommand(c *cobra.Command, method, uri string, direct func(*caddymodule.TokenKeys) ([]token.KeyInfo, error)) error {
	var list []token.KeyInfo
	err := withStore(c, method, uri, nil, &list,
		func(location string) error {
			k, closeStore, err := caddymodule.OpenTokenKeys(location)
			if err != nil {
				return fmt.Errorf("opening the store %s: %w", caddymodule.RedactStorage(location), err)
			}
			defer closeStore()
			list, err = direct(k)
			return err
		})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tKID\tCREATED\tSIGNS SINCE / MAY SIGN FROM")
	for _, k := range list {
		since := "-"
		if !k.Since.IsZero() {
			since = k.Since.Format("2006-01-02 15:04:05 MST")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Role, k.ID, k.Created.Format("2006-01-02 15:04:05 MST"), since)
	}
	return tw.Flush()
}

// keysCommand runs a key operation through the running server's admin API
// or on the store opened directly, and prints the key set after it.
func keysCommand(c *cobra.Command, method, uri string, body any, direct func(*caddymodule.SPKeys) ([]caddymodule.SPKeySummary, error)) error {
	var list []caddymodule.SPKeySummary
	err := withStore(c, method, uri, body, &list,
		func(location string) error {
			k, closeStore, err := caddymodule.OpenSPKeys(location)
			if err != nil {
				return fmt.Errorf("opening the store %s: %w", caddymodule.RedactStorage(location), err)
			}
			defer closeStore()
			list, err = direct(k)
			return err
		})
	if err != nil {
		return err
	}
	return printKeys(c.OutOrStdout(), list)
}

func printKeys(w io.Writer, list []caddymodule.SPKeySummary) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tFINGERPRINT (SHA-256)\tNOT AFTER\tPUBLISHED SINCE\tSUBJECT")
	for _, k := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.Role, k.Fingerprint, k.NotAfter.Format("2006-01-02"),
			k.Published.Format("2006-01-02 15:04 MST"), k.Subject)
		if k.EncryptionFingerprint != "" {
			fmt.Fprintf(tw, "\t(encryption %s)\t\t\t\n", k.EncryptionFingerprint)
		}
	}
	return tw.Flush()
}
