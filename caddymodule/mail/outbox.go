package mail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/mail/internal/mimeparse"
)

// DefaultOutboxFrom is the sender of Outbox messages when Outbox.From is
// empty.
const DefaultOutboxFrom = "Wij Techniek <noreply@localhost>"

// Outbox is a Sender for development: instead of delivering, it writes each
// message, byte for byte as SMTPSender would send it, as an .eml file in Dir,
// and lists and reads them back for a dev page. The files hold verification
// codes: Dir is created 0700 and each file 0600. Safe for concurrent use,
// also by several processes sharing Dir.
type Outbox struct {
	// Dir is the directory of the .eml files, created on the first Send.
	Dir string
	// From is the sender, as in SMTPConfig.From; empty means
	// DefaultOutboxFrom.
	From string
}

// StoredMessage is a message read back from an Outbox.
type StoredMessage struct {
	// ID names the message in the Outbox (its file name without ".eml").
	// IDs sort by the time of sending.
	ID string
	// To and Subject are the decoded header fields.
	To, Subject string
	// Text and HTML are the decoded bodies.
	Text, HTML string
	// Date is the message's Date header.
	Date time.Time
}

var _ Sender = (*Outbox)(nil)

// outboxID matches the IDs that Send makes: the UTC time to the nanosecond
// and 64 random bits. Get accepts nothing else, so no ID can name a path
// outside Dir.
var outboxID = regexp.MustCompile(`^[0-9]{8}T[0-9]{15}-[0-9a-f]{16}$`)

// Send writes m to Dir as a new .eml file. The file appears complete or not
// at all (written under a temporary name, then renamed).
func (o *Outbox) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if o.Dir == "" {
		return errors.New("mail: Outbox.Dir is empty")
	}
	fromValue := o.From
	if fromValue == "" {
		fromValue = DefaultOutboxFrom
	}
	from, err := parseAddress("From", fromValue)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	now := time.Now()
	raw, _, err := buildMessage(from, m, now)
	if err != nil {
		return err
	}
	var random [8]byte
	if _, err := rand.Read(random[:]); err != nil {
		return fmt.Errorf("mail: outbox id: %w", err)
	}
	utc := now.UTC()
	id := fmt.Sprintf("%s%09d-%s", utc.Format("20060102T150405"), utc.Nanosecond(), hex.EncodeToString(random[:]))

	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("mail: outbox: %w", err)
	}
	root, err := os.OpenRoot(o.Dir)
	if err != nil {
		return fmt.Errorf("mail: outbox: %w", err)
	}
	defer root.Close()
	tmp := id + ".tmp"
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("mail: outbox: %w", err)
	}
	_, err = f.Write(raw)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, id+".eml")
	}
	if err != nil {
		root.Remove(tmp)
		return fmt.Errorf("mail: outbox: writing %s: %w", id, err)
	}
	return nil
}

// List returns the messages in the Outbox, newest first. A Dir that does
// not exist yet is an empty Outbox. Files whose names are not Outbox IDs
// are ignored.
func (o *Outbox) List() ([]StoredMessage, error) {
	root, err := os.OpenRoot(o.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mail: outbox: %w", err)
	}
	defer root.Close()
	entries, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		return nil, fmt.Errorf("mail: outbox: %w", err)
	}
	var list []StoredMessage
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".eml")
		if !ok || !outboxID.MatchString(id) || !e.Type().IsRegular() {
			continue
		}
		m, err := readStored(root, id)
		if err != nil {
			return nil, err
		}
		list = append(list, m)
	}
	slices.SortFunc(list, func(a, b StoredMessage) int {
		if c := b.Date.Compare(a.Date); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return list, nil
}

// Get returns the message with the given ID. An ID that Send cannot have
// made (such as "../x") is rejected without touching the file system. Both
// that and a missing message give an error wrapping fs.ErrNotExist.
func (o *Outbox) Get(id string) (StoredMessage, error) {
	if !outboxID.MatchString(id) {
		return StoredMessage{}, fmt.Errorf("mail: outbox: invalid message id %q: %w", id, fs.ErrNotExist)
	}
	root, err := os.OpenRoot(o.Dir)
	if err != nil {
		return StoredMessage{}, fmt.Errorf("mail: outbox: %w", err)
	}
	defer root.Close()
	return readStored(root, id)
}

// readStored reads and decodes the message id in root.
func readStored(root *os.Root, id string) (StoredMessage, error) {
	raw, err := root.ReadFile(id + ".eml")
	if err != nil {
		return StoredMessage{}, fmt.Errorf("mail: outbox: %w", err)
	}
	p, err := mimeparse.Parse(raw)
	if err != nil {
		return StoredMessage{}, fmt.Errorf("mail: outbox message %s: %w", id, err)
	}
	date, err := p.Header.Date()
	if err != nil {
		return StoredMessage{}, fmt.Errorf("mail: outbox message %s: Date: %w", id, err)
	}
	var dec mime.WordDecoder
	to, err := dec.DecodeHeader(p.Header.Get("To"))
	if err != nil {
		return StoredMessage{}, fmt.Errorf("mail: outbox message %s: To: %w", id, err)
	}
	return StoredMessage{ID: id, To: to, Subject: p.Subject, Text: p.Text, HTML: p.HTML, Date: date}, nil
}
