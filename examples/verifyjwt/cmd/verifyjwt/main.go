// Command verifyjwt checks an X-Wij-Assertion token against wijgate's JWKS
// and prints its claims as JSON:
//
//	verifyjwt -jwks https://account.example.nl/.well-known/jwks.json \
//	    -iss https://account.example.nl -aud declaratie "$TOKEN"
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/wijtechniek/wijgate/examples/verifyjwt"
)

func main() {
	jwksURL := flag.String("jwks", "", "URL of wijgate's JWKS (…/.well-known/jwks.json)")
	issuer := flag.String("iss", "", "expected issuer: the portal's URL")
	audience := flag.String("aud", "", "expected audience: this app's name")
	flag.Parse()
	if *jwksURL == "" || *issuer == "" || *audience == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: verifyjwt -jwks URL -iss ISSUER -aud APP TOKEN")
		os.Exit(2)
	}
	claims, err := verifyjwt.Verify(flag.Arg(0), verifyjwt.NewRemoteJWKS(*jwksURL), *issuer, *audience, time.Now())
	if err != nil {
		fmt.Fprintln(os.Stderr, "rejected:", err)
		os.Exit(1)
	}
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	if err := out.Encode(claims); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
