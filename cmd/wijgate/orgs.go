package main

import (
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/wijtechniek/wijgate/caddymodule"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "orgs",
		Usage: "list|show <kvk> [--config <file>] [--address <admin>] [--storage <dir>]",
		Short: "Shows organisations and their members",
		Long: `
Lists organisations, or shows one with its members, from the wijgate store.
Like 'wijgate accounts', it asks a running server through its admin API, or,
when no server answers, opens the store named in the server's config
(--config, default ./Caddyfile) or by --storage.

  wijgate orgs list
  wijgate orgs show 12345678
`,
		CobraFunc: func(cmd *cobra.Command) {
			addOperatorFlags(cmd)
			list := &cobra.Command{
				Use:   "list",
				Short: "Lists organisations",
				RunE: func(c *cobra.Command, _ []string) error {
					var all []caddymodule.OrgSummary
					err := withOperator(c, http.MethodGet, "/wijgate/orgs", nil, &all, func(op *caddymodule.Operator) (err error) {
						all, err = op.ListOrgs()
						return err
					})
					if err != nil {
						return err
					}
					tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "KVK\tNAME\tCREATED")
					for _, o := range all {
						fmt.Fprintf(tw, "%s\t%s\t%s\n", o.KvK, o.Name, o.CreatedAt.Format("2006-01-02 15:04"))
					}
					return tw.Flush()
				},
			}
			show := &cobra.Command{
				Use:   "show <kvk>",
				Short: "Shows an organisation and its members",
				Args:  cobra.ExactArgs(1),
				RunE: func(c *cobra.Command, args []string) error {
					var o caddymodule.OrgSummary
					err := withOperator(c, http.MethodGet, "/wijgate/orgs/"+args[0], nil, &o, func(op *caddymodule.Operator) (err error) {
						o, err = op.ShowOrg(args[0])
						return err
					})
					if err != nil {
						return err
					}
					out := c.OutOrStdout()
					fmt.Fprintf(out, "%s  %s\n", o.KvK, o.Name)
					if o.RSIN != "" || o.Branch != "" {
						fmt.Fprintf(out, "RSIN %s  vestiging %s\n", o.RSIN, o.Branch)
					}
					tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "EMAIL\tNAME\tROLE\tANCHOR\tAPPS\tSINCE\tINVITED BY")
					for _, m := range o.Members {
						anchor := m.Anchor
						if m.Level != "" {
							anchor += " (" + m.Level + ")"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Email, m.Name, m.Role, anchor,
							strings.Join(m.Apps, ","), m.Since.Format("2006-01-02"), m.InvitedBy)
					}
					return tw.Flush()
				},
			}
			cmd.AddCommand(list, show)
		},
	})
}
