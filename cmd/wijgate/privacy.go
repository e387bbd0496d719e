package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wijtechniek/wijgate/caddymodule"
	"github.com/wijtechniek/wijgate/caddymodule/privacy"
)

// exportCommand is `wijgate accounts export`: everything held about one
// account, as the person's own download from the portal has it.
func exportCommand() *cobra.Command {
	export := &cobra.Command{
		Use:   "export --email <email> [--out <file>]",
		Short: "Writes everything held about an account as JSON (to stdout, or --out)",
		RunE: func(c *cobra.Command, _ []string) error {
			email, _ := c.Flags().GetString("email")
			out, _ := c.Flags().GetString("out")
			var x privacy.Export
			err := withOperator(c, http.MethodPost, "/wijgate/accounts/export",
				caddymodule.AccountRequest{Email: email}, &x,
				func(op *caddymodule.Operator) (err error) {
					x, err = op.ExportAccount(email)
					return err
				})
			if err != nil {
				return err
			}
			body, err := json.MarshalIndent(x, "", "  ")
			if err != nil {
				return err
			}
			body = append(body, '\n')
			if out == "" {
				_, err = c.OutOrStdout().Write(body)
				return err
			}
			// Personal data: readable by the operator only.
			if err := os.WriteFile(out, body, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(c.ErrOrStderr(), "wrote everything held about %s to %s\n", x.Account.Email, out)
			return nil
		},
	}
	export.Flags().String("email", "", "Email address (required)")
	export.Flags().String("out", "", "File to write (default stdout); created readable by you only")
	_ = export.MarkFlagRequired("email")
	return export
}

// deleteCommand is `wijgate accounts delete`: the removal a person can do
// on the portal, with the same refusal for an organisation's last
// eHerkenning-verified admin.
func deleteCommand() *cobra.Command {
	del := &cobra.Command{
		Use:   "delete --email <email> [--yes]",
		Short: "Removes an account and everything kept for it; asks first unless --yes",
		RunE: func(c *cobra.Command, _ []string) error {
			email, _ := c.Flags().GetString("email")
			yes, _ := c.Flags().GetBool("yes")
			if !yes && !confirmed(c.InOrStdin(), c.ErrOrStderr(), email) {
				return errors.New("not confirmed; nothing was removed")
			}
			var a caddymodule.AccountSummary
			err := withOperator(c, http.MethodPost, "/wijgate/accounts/delete",
				caddymodule.AccountRequest{Email: email}, &a,
				func(op *caddymodule.Operator) (err error) {
					a, err = op.DeleteAccount(email)
					return err
				})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "removed %s (%s) and everything kept for it; its sessions have ended\n", a.Email, a.ID)
			return nil
		},
	}
	del.Flags().String("email", "", "Email address (required)")
	del.Flags().Bool("yes", false, "Do not ask for confirmation")
	_ = del.MarkFlagRequired("email")
	return del
}

// confirmed asks whether to remove the account and reads the answer, one
// line; only "yes" confirms.
func confirmed(in io.Reader, prompt io.Writer, email string) bool {
	fmt.Fprintf(prompt, "Remove the account %s and everything kept for it, for good? Type yes to confirm: ", email)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false
	}
	fmt.Fprintln(prompt)
	return strings.TrimSpace(line) == "yes"
}
