package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"text/tabwriter"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/wijtechniek/wijgate/caddymodule"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "backup",
		Usage: "--to <file> [--config <file>] [--address <admin>] [--storage <dir | postgres URL>] | verify <file>",
		Short: "Backs up the wijgate store to a file, or checks a backup",
		Long: `
Writes every record of the wijgate store to one file: accounts, sessions,
organisations, memberships, invitations, the audit log, codes, counters,
eHerkenning state and the keys (cookie keys, code key, SP and token keys).
The records come from one snapshot of the store, taken while the server
goes on serving. The file holds the keys: keep it as you keep them (it is
written with mode 0600).

While the server runs, the backup is streamed from it through Caddy's
admin API (found as for 'wijgate accounts'). When no server answers, the
command opens the store the config names (or --storage) itself: a badger
directory or a postgres:// URL.

The file is written next to --to and takes its name only once it has been
read back whole, so an existing backup of that name is replaced only by a
whole one.

  wijgate backup --to /var/backups/wijgate/wijgate-$(date +%F).backup
  wijgate backup verify /var/backups/wijgate/wijgate-2026-12-01.backup

'wijgate backup verify' reads a backup end to end without writing
anything: it checks the format, the checksum and the counts, and prints
what the backup holds. Restore with 'wijgate restore'.
`,
		CobraFunc: func(cmd *cobra.Command) {
			addOperatorFlags(cmd)
			cmd.Flags().String("to", "", "The file to write the backup to (required)")
			cmd.Args = cobra.NoArgs
			cmd.RunE = func(c *cobra.Command, _ []string) error {
				to, _ := c.Flags().GetString("to")
				if to == "" {
					return errors.New("--to is missing: name the file to write the backup to")
				}
				info, err := takeBackup(c, to)
				if err != nil {
					return err
				}
				if err := writeBackupInfo(c.OutOrStdout(), info); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "backup written to %s (%d records, %d bytes); it holds the keys: keep it as you keep them\n", to, info.Summary.Counts.Total(), info.Size)
				return nil
			}
			cmd.AddCommand(&cobra.Command{
				Use:   "verify <file>",
				Short: "Reads a backup end to end and prints what it holds, writing nothing",
				Args:  cobra.ExactArgs(1),
				RunE: func(c *cobra.Command, args []string) error {
					info, err := caddymodule.ReadBackup(args[0], nil)
					if err != nil {
						return err
					}
					if err := writeBackupInfo(c.OutOrStdout(), info); err != nil {
						return err
					}
					fmt.Fprintf(c.OutOrStdout(), "the backup is whole: %d records, checksum and counts agree\n", info.Summary.Counts.Total())
					warnReadable(c.ErrOrStderr(), args[0])
					return nil
				},
			})
		},
	})
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "restore",
		Usage: "--from <backup file> --storage <empty badger dir | postgres URL> [--force]",
		Short: "Restores a backup into an empty wijgate store",
		Long: `
Writes every record of a backup made by 'wijgate backup' into an empty
store: a badger directory (a new one is made) or an empty PostgreSQL
database, whichever engine the backup came from. The backup is read end
to end first, so a damaged file writes nothing. A store that holds
records is never overwritten, and a badger directory a running server
holds is refused. Afterwards the target is counted kind by kind against
the backup's records that are still live, and the command fails unless
they agree.

A restore that fails leaves the target marked incomplete, and no server
starts on it; run the same command with --force to empty it and restore
again. Then point the server's storage setting at the restored store and
start it.

  wijgate restore --from wijgate-2026-12-01.backup --storage /var/lib/wijgate-restored
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().String("from", "", "The backup file (required)")
			cmd.Flags().String("storage", "", "The empty store to restore into: a badger directory or a postgres:// URL (required)")
			cmd.Flags().Bool("force", false, "Empty the target first if it holds an incomplete copy or restore")
			_ = cmd.MarkFlagRequired("from")
			_ = cmd.MarkFlagRequired("storage")
			cmd.Args = cobra.NoArgs
			cmd.RunE = func(c *cobra.Command, _ []string) error {
				from, _ := c.Flags().GetString("from")
				setting, _ := c.Flags().GetString("storage")
				force, _ := c.Flags().GetBool("force")
				to, err := caddymodule.ResolveStorage(setting)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.ErrOrStderr(), "restoring %s into %s\n", from, caddymodule.RedactStorage(to))
				report, err := caddymodule.RestoreBackup(c.Context(), from, to, caddymodule.RestoreOptions{Force: force})
				if len(report.Kinds) > 0 {
					if werr := writeRestoreReport(c.OutOrStdout(), report); werr != nil && err == nil {
						err = werr
					}
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "restored; the target holds every record of the backup still live after %s\n",
					report.LiveAfter.Format("15:04:05"))
				return nil
			}
		},
	})
}

// takeBackup writes a backup to a new file next to to, from the running
// server or, when none answers, from its store opened here, reads it back
// whole and only then gives it the name to.
func takeBackup(c *cobra.Command, to string) (caddymodule.BackupInfo, error) {
	var info caddymodule.BackupInfo
	cfg, err := loadServerConfig(c)
	if err != nil {
		return info, err
	}
	partial, err := os.CreateTemp(filepath.Dir(to), "."+filepath.Base(to)+".partial-*")
	if err != nil {
		return info, fmt.Errorf("cannot write the backup next to %s: %w", to, err)
	}
	defer func() {
		partial.Close()
		os.Remove(partial.Name())
	}()

	flagAddr, _ := c.Flags().GetString("address")
	addr := cfg.adminAddress(flagAddr)
	adminOff := flagAddr == "" && cfg != nil && cfg.Admin.Disabled
	var from string
	if !adminOff && serverAnswers(addr) {
		from = "the server at " + addr
		fmt.Fprintf(c.ErrOrStderr(), "backing up %s\n", from)
		resp, err := caddycmd.AdminAPIRequest(addr, http.MethodGet, "/wijgate/backup", nil, nil)
		if err != nil {
			return info, fmt.Errorf("the server at %s: %s", addr, serverMessage(err))
		}
		_, err = io.Copy(partial, resp.Body)
		resp.Body.Close()
		if err != nil {
			return info, fmt.Errorf("receiving the backup from the server at %s: %w", addr, err)
		}
	} else {
		flagDir, _ := c.Flags().GetString("storage")
		location, source, err := cfg.storeLocation(flagDir)
		if err != nil {
			return info, fmt.Errorf("no server answered at %s, and %w", addr, err)
		}
		from = "the store " + caddymodule.RedactStorage(location)
		fmt.Fprintf(c.ErrOrStderr(), "no server answered at %s; backing up %s (from %s)\n", addr, from, source)
		if _, err := caddymodule.BackupStore(c.Context(), location, partial); err != nil {
			return info, err
		}
	}
	if err := partial.Sync(); err != nil {
		return info, fmt.Errorf("writing the backup next to %s: %w", to, err)
	}
	if err := partial.Close(); err != nil {
		return info, fmt.Errorf("writing the backup next to %s: %w", to, err)
	}
	info, err = caddymodule.ReadBackup(partial.Name(), nil)
	var damaged *caddymodule.BackupError
	if errors.As(err, &damaged) {
		return info, fmt.Errorf("the backup %s sent %s\nnothing was written to %s", from, damaged.Reason, to)
	}
	if err != nil {
		return info, fmt.Errorf("%w\nnothing was written to %s", err, to)
	}
	if err := os.Rename(partial.Name(), to); err != nil {
		return info, fmt.Errorf("naming the backup %s: %w", to, err)
	}
	if dir, err := os.Open(filepath.Dir(to)); err == nil {
		err = dir.Sync()
		dir.Close()
		if err != nil {
			return info, fmt.Errorf("naming the backup %s: %w", to, err)
		}
	}
	return info, nil
}

// warnReadable warns when a backup, which holds the keys, can be read by
// others than its owner.
func warnReadable(w io.Writer, file string) {
	st, err := os.Stat(file)
	if err == nil && st.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(w, "warning: %s can be read by others than its owner (mode %04o) and holds the keys: chmod 600 it\n", file, st.Mode().Perm())
	}
}

// writeBackupInfo prints a backup's header and its counts.
func writeBackupInfo(w io.Writer, info caddymodule.BackupInfo) error {
	h := info.Header
	fmt.Fprintf(w, "format %s version %d, written by wijgate %s from a %s store at %s\n",
		h.Format, h.Version, h.WijGate, h.Engine, h.TakenAt.Format("2006-01-02 15:04:05 MST"))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "KIND\tRECORDS\t")
	for _, k := range storage.Kinds {
		fmt.Fprintf(tw, "%s\t%d\t\n", k, info.Summary.Counts[k])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "sha256 %s\n", info.Summary.SHA256)
	return err
}

// writeRestoreReport prints what the backup held and what the target
// holds, kind by kind.
func writeRestoreReport(w io.Writer, report caddymodule.RestoreReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "KIND\tIN BACKUP\tSTILL LIVE\tRESTORED\t\t")
	for _, k := range report.Kinds {
		verdict := "ok"
		if k.Live != k.Target {
			verdict = "DIFFERS"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t\n", k.Kind, k.InBackup, k.Live, k.Target, verdict)
	}
	return tw.Flush()
}
