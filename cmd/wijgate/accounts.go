package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"text/tabwriter"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/wijtechniek/wijgate/caddymodule"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "accounts",
		Usage: "add|list|disable|reset-factors|export|delete [--config <file>] [--address <admin>] [--storage <dir>]",
		Short: "Manages Wij Techniek accounts",
		Long: `
Adds, lists and disables accounts in the wijgate store.

While the server runs, the command talks to it through Caddy's admin API,
because only one process may open the store: at --address, else the admin
address in the server's config (--config, default ./Caddyfile), else
localhost:2019 (or $CADDY_ADMIN). When no server answers there, it opens
the store that config names (or --storage) itself; with neither it refuses,
so it never writes to a store the server does not read.

  wijgate accounts add --email E --name N      (password on stdin)
  wijgate accounts list
  wijgate accounts disable --email E           (ends all its sessions)
  wijgate accounts reset-factors --email E     (removes its second factors, ends its sessions)
  wijgate accounts export --email E [--out F]  (everything held about it, JSON)
  wijgate accounts delete --email E [--yes]    (removes it and everything kept for it)
`,
		CobraFunc: func(cmd *cobra.Command) {
			addOperatorFlags(cmd)

			add := &cobra.Command{
				Use:   "add --email <email> --name <name>",
				Short: "Adds an account; the password is read from stdin",
				RunE: func(c *cobra.Command, _ []string) error {
					email, _ := c.Flags().GetString("email")
					name, _ := c.Flags().GetString("name")
					password, err := readPassword(os.Stdin)
					if err != nil {
						return err
					}
					var a caddymodule.AccountSummary
					err = withOperator(c, http.MethodPost, "/wijgate/accounts",
						caddymodule.AccountRequest{Email: email, Name: name, Password: password}, &a,
						func(op *caddymodule.Operator) error {
							a, err = op.AddAccount(caddymodule.AccountRequest{Email: email, Name: name, Password: password})
							return err
						})
					if err != nil {
						return err
					}
					fmt.Fprintf(c.OutOrStdout(), "added %s (%s)\n", a.Email, a.ID)
					return nil
				},
			}
			add.Flags().String("email", "", "Email address (required)")
			add.Flags().String("name", "", "First and last name (required)")
			_ = add.MarkFlagRequired("email")
			_ = add.MarkFlagRequired("name")

			list := &cobra.Command{
				Use:   "list",
				Short: "Lists accounts",
				RunE: func(c *cobra.Command, _ []string) error {
					var all []caddymodule.AccountSummary
					err := withOperator(c, http.MethodGet, "/wijgate/accounts", nil, &all,
						func(op *caddymodule.Operator) (err error) {
							all, err = op.ListAccounts()
							return err
						})
					if err != nil {
						return err
					}
					tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "EMAIL\tNAME\tID\tCREATED\tSTATUS")
					for _, a := range all {
						status := "active"
						if a.Disabled {
							status = "disabled"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Email, a.Name, a.ID, a.CreatedAt.Format("2006-01-02 15:04"), status)
					}
					return tw.Flush()
				},
			}

			disable := &cobra.Command{
				Use:   "disable --email <email>",
				Short: "Disables an account and ends all its sessions",
				RunE: func(c *cobra.Command, _ []string) error {
					email, _ := c.Flags().GetString("email")
					var a caddymodule.AccountSummary
					err := withOperator(c, http.MethodPost, "/wijgate/accounts/disable",
						caddymodule.AccountRequest{Email: email}, &a,
						func(op *caddymodule.Operator) (err error) {
							a, err = op.DisableAccount(email)
							return err
						})
					if err != nil {
						return err
					}
					fmt.Fprintf(c.OutOrStdout(), "disabled %s; its sessions have ended\n", a.Email)
					return nil
				},
			}
			disable.Flags().String("email", "", "Email address (required)")
			_ = disable.MarkFlagRequired("email")

			resetFactors := &cobra.Command{
				Use:   "reset-factors --email <email>",
				Short: "Removes an account's second factors and ends all its sessions",
				RunE: func(c *cobra.Command, _ []string) error {
					email, _ := c.Flags().GetString("email")
					var a caddymodule.AccountSummary
					err := withOperator(c, http.MethodPost, "/wijgate/accounts/reset-factors",
						caddymodule.AccountRequest{Email: email}, &a,
						func(op *caddymodule.Operator) (err error) {
							a, err = op.RemoveSecondFactors(email)
							return err
						})
					if err != nil {
						return err
					}
					fmt.Fprintf(c.OutOrStdout(), "removed the second factors of %s; its sessions have ended, and the next login asks the password alone\n", a.Email)
					return nil
				},
			}
			resetFactors.Flags().String("email", "", "Email address (required)")
			_ = resetFactors.MarkFlagRequired("email")

			cmd.AddCommand(add, list, disable, resetFactors, exportCommand(), deleteCommand())
		},
	})
}

// readPassword reads the password: without echo from a terminal (asked
// twice), else one line from the pipe.
func readPassword(in *os.File) (string, error) {
	fd := int(in.Fd())
	if term.IsTerminal(fd) {
		fmt.Fprint(os.Stderr, "Password: ")
		pw, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(os.Stderr, "Repeat password: ")
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", err
		}
		if !bytes.Equal(pw, again) {
			return "", errors.New("the passwords differ")
		}
		return string(pw), nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = trimLineEnd(line)
	if line == "" {
		return "", errors.New("no password on stdin")
	}
	return line, nil
}

func trimLineEnd(s string) string {
	if n := len(s); n > 0 && s[n-1] == '\n' {
		s = s[:n-1]
		if n := len(s); n > 0 && s[n-1] == '\r' {
			s = s[:n-1]
		}
	}
	return s
}
