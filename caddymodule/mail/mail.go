// Package mail sends wijgate's email: SMTP delivery ([SMTPSender]), a
// development outbox that keeps messages as .eml files ([Outbox]), and the
// Dutch and English message texts ([VerificationCodeMessage] and friends).
//
// Both senders turn a [Message] into the same RFC 5322 / MIME wire form (one
// builder), so what the outbox shows is what SMTP would have delivered.
//
// The package knows nothing of Caddy; the Caddy module configures a Sender
// and hands it messages built by the text constructors.
package mail

import (
	"context"
	"errors"
)

// Message is one email ready to send.
type Message struct {
	// To is the recipient: a bare address ("jan@example.nl") or one with a
	// display name ("Jan <jan@example.nl>").
	To string
	// Subject is the subject line; non-ASCII text is RFC 2047-encoded.
	Subject string
	// Text is the text/plain body.
	Text string
	// HTML is the text/html body. When empty, the message is sent as
	// text/plain only; otherwise as multipart/alternative with both parts.
	HTML string
}

// Sender delivers messages. Implementations are safe for concurrent use.
type Sender interface {
	// Send delivers m or returns why it could not. It honours ctx.
	Send(ctx context.Context, m Message) error
}

// ErrUnavailable is wrapped by errors from a Send that failed for a reason
// that may go away by itself: the mail server could not be reached, timed
// out, dropped the connection or answered with a temporary (4xx) reply.
// Callers can test it with errors.Is and ask the user to try again later.
var ErrUnavailable = errors.New("mail: mail server temporarily unavailable")

// ErrInvalidMessage is wrapped by errors for messages (or a configured From)
// that cannot be sent as given: a line break in a header field (header
// injection), a malformed or unsupported address, or an empty body.
var ErrInvalidMessage = errors.New("mail: invalid message")
