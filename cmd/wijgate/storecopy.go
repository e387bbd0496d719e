package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/wijtechniek/wijgate/caddymodule"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "store",
		Usage: "copy --from <badger dir | postgres URL> --to <badger dir | postgres URL> [--force]",
		Short: "Moves the wijgate store between engines",
		Long: `
Copies every record of one wijgate store into another: accounts, sessions,
organisations, memberships, invitations, the audit log, codes, counters,
eHerkenning state and the keys (cookie keys, code key, SP and token keys),
so people stay logged in and logins under way finish after the move.
Either side is a badger directory or a postgres:// URL, written as in the
Caddyfile's storage setting ({env.*} and {file.*} placeholders work).

Stop the servers first: a badger directory a server holds is refused, and
a database servers keep writing to gives counts that differ. The target
must be empty; --force empties it first. Afterwards both sides are counted
kind by kind and the command fails unless they agree. A copy that fails
leaves the target marked incomplete; run it again with --force.

  wijgate store copy --from /var/lib/wijgate --to 'postgres://wijgate@db/wijgate'
  wijgate store copy --from 'postgres://wijgate@db/wijgate' --to /var/lib/wijgate-new
`,
		CobraFunc: func(cmd *cobra.Command) {
			copyCmd := &cobra.Command{
				Use:   "copy --from <store> --to <store>",
				Short: "Copies a store into an empty one and checks the counts",
				Args:  cobra.NoArgs,
				RunE: func(c *cobra.Command, _ []string) error {
					fromSetting, _ := c.Flags().GetString("from")
					toSetting, _ := c.Flags().GetString("to")
					force, _ := c.Flags().GetBool("force")
					from, err := caddymodule.ResolveStorage(fromSetting)
					if err != nil {
						return err
					}
					to, err := caddymodule.ResolveStorage(toSetting)
					if err != nil {
						return err
					}
					fmt.Fprintf(c.ErrOrStderr(), "copying %s to %s\n", caddymodule.RedactStorage(from), caddymodule.RedactStorage(to))
					report, err := caddymodule.CopyStore(c.Context(), from, to, caddymodule.CopyOptions{Force: force})
					if len(report.Kinds) > 0 {
						if werr := writeCopyReport(c.OutOrStdout(), report); werr != nil && err == nil {
							err = werr
						}
					}
					if err != nil {
						return err
					}
					fmt.Fprintf(c.OutOrStdout(), "copied; both sides hold the same records of every kind (counted of those live after %s)\n",
						report.LiveAfter.Format("15:04:05"))
					return nil
				},
			}
			copyCmd.Flags().String("from", "", "The store to copy: a badger directory or a postgres:// URL (required)")
			copyCmd.Flags().String("to", "", "The empty store to copy into: a badger directory or a postgres:// URL (required)")
			copyCmd.Flags().Bool("force", false, "Empty the target first if it holds records or an incomplete copy")
			_ = copyCmd.MarkFlagRequired("from")
			_ = copyCmd.MarkFlagRequired("to")
			cmd.AddCommand(copyCmd)
		},
	})
}

// writeCopyReport prints the counts of both sides, kind by kind.
func writeCopyReport(w io.Writer, report caddymodule.CopyReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "KIND\tCOPIED\tSOURCE\tTARGET\t\t")
	for _, k := range report.Kinds {
		verdict := "ok"
		if k.Source != k.Target {
			verdict = "DIFFERS"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t\n", k.Kind, k.Copied, k.Source, k.Target, verdict)
	}
	return tw.Flush()
}
