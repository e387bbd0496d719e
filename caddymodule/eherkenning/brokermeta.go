package eherkenning

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"
	"go.uber.org/zap"
)

// MetadataSource says where the broker's metadata comes from. Exactly one of
// XML, File and URL is set. File and URL sources are reloaded every
// RefreshInterval; when a reload fails, the last good copy stays in use.
type MetadataSource struct {
	// XML is the metadata itself; it is never reloaded.
	XML []byte
	// File is a path to read the metadata from.
	File string
	// URL is fetched with Client (default: a client with a 10 s timeout).
	URL    string
	Client *http.Client
	// RefreshInterval is how old a loaded copy may get before a reload is
	// started in the background (default 1 h, at least 1 min).
	RefreshInterval time.Duration
	// EntityID selects the broker's EntityDescriptor inside an
	// EntitiesDescriptor. Empty picks the first one with an
	// IDPSSODescriptor.
	EntityID string
	// TrustedCerts, when not empty, makes the metadata's own signature
	// (over its root element) mandatory and verified against these
	// certificates. Brokers sign their metadata as a whole.
	TrustedCerts []*x509.Certificate
}

const maxMetadataBytes = 1 << 20

// brokerMetadata is what we use from the broker's metadata.
type brokerMetadata struct {
	entityID    string
	signing     []namedCert
	sso         map[string]string // binding → location
	ars         []endpoint        // SOAP ArtifactResolutionServices
	wantsSigned bool
	loadedAt    time.Time
}

type endpoint struct {
	index     int
	isDefault bool
	location  string
}

func (s MetadataSource) validate() error {
	n := 0
	for _, set := range []bool{len(s.XML) > 0, s.File != "", s.URL != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New("broker metadata: set exactly one of XML, File and URL")
	}
	if s.URL != "" && !strings.HasPrefix(s.URL, "https://") && !strings.HasPrefix(s.URL, "http://") {
		return errors.New("broker metadata: URL must be http(s)")
	}
	return nil
}

func (s MetadataSource) refreshInterval() time.Duration {
	switch {
	case s.RefreshInterval <= 0:
		return time.Hour
	case s.RefreshInterval < time.Minute:
		return time.Minute
	}
	return s.RefreshInterval
}

func (s MetadataSource) reloadable() bool { return len(s.XML) == 0 }

// fetch returns the raw metadata.
func (s MetadataSource) fetch(ctx context.Context) ([]byte, error) {
	switch {
	case len(s.XML) > 0:
		return s.XML, nil
	case s.File != "":
		f, err := os.Open(s.File)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readLimited(f, maxMetadataBytes)
	}
	client := s.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", s.URL, resp.Status)
	}
	return readLimited(resp.Body, maxMetadataBytes)
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("more than %d bytes", limit)
	}
	return b, nil
}

// parseBrokerMetadata reads the broker's metadata. The real brokers'
// metadata is not strictly schema-valid, so only what we use is checked.
func parseBrokerMetadata(raw []byte, src MetadataSource, now time.Time) (*brokerMetadata, error) {
	if len(raw) > maxMetadataBytes {
		return nil, errors.New("metadata too large")
	}
	if err := prescanXML(raw); err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	doc.ReadSettings = etree.ReadSettings{MaxDepth: maxXMLDepth}
	if err := doc.ReadFromBytes(raw); err != nil {
		return nil, err
	}
	root := doc.Root()
	if root == nil {
		return nil, errors.New("metadata: empty document")
	}
	if len(src.TrustedCerts) > 0 {
		var trusted []namedCert
		for _, c := range src.TrustedCerts {
			trusted = append(trusted, namedCert{cert: c, names: keyNameAliases(c)})
		}
		verified, err := verifySigned(root, trusted, now)
		if err != nil {
			return nil, fmt.Errorf("metadata signature: %w", err)
		}
		root = verified
	}
	if err := checkValidUntil(root, now); err != nil {
		return nil, err
	}
	ed, err := findBrokerEntity(root, src.EntityID)
	if err != nil {
		return nil, err
	}
	if err := checkValidUntil(ed, now); err != nil {
		return nil, err
	}
	idp, err := mustChild(ed, nsMD, "IDPSSODescriptor")
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	m := &brokerMetadata{
		entityID:    ed.SelectAttrValue("entityID", ""),
		sso:         map[string]string{},
		wantsSigned: idp.SelectAttrValue("WantAuthnRequestsSigned", "") == "true",
		loadedAt:    now,
	}
	for _, kd := range children(idp, nsMD, "KeyDescriptor") {
		if use := kd.SelectAttrValue("use", ""); use != "" && use != "signing" {
			continue
		}
		nc, err := readKeyDescriptor(kd)
		if err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
		m.signing = append(m.signing, nc)
	}
	if len(m.signing) == 0 {
		return nil, errors.New("metadata: no signing certificate for the broker")
	}
	for _, s := range children(idp, nsMD, "SingleSignOnService") {
		b, loc := s.SelectAttrValue("Binding", ""), s.SelectAttrValue("Location", "")
		if _, dup := m.sso[b]; !dup && loc != "" {
			m.sso[b] = loc
		}
	}
	for _, a := range children(idp, nsMD, "ArtifactResolutionService") {
		if a.SelectAttrValue("Binding", "") != BindingSOAP {
			continue
		}
		idx, err := strconv.Atoi(a.SelectAttrValue("index", ""))
		if err != nil || idx < 0 || idx > 0xffff {
			return nil, errors.New("metadata: ArtifactResolutionService without a valid index")
		}
		m.ars = append(m.ars, endpoint{
			index:     idx,
			isDefault: a.SelectAttrValue("isDefault", "") == "true",
			location:  a.SelectAttrValue("Location", ""),
		})
	}
	sort.SliceStable(m.ars, func(i, j int) bool { return m.ars[i].index < m.ars[j].index })
	if m.entityID == "" {
		return nil, errors.New("metadata: EntityDescriptor without entityID")
	}
	return m, nil
}

func checkValidUntil(el *etree.Element, now time.Time) error {
	t, ok, err := parseTime(el, "validUntil")
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	if ok && !now.Before(t) {
		return fmt.Errorf("metadata: validUntil %s has passed", samlTime(t))
	}
	return nil
}

func findBrokerEntity(root *etree.Element, entityID string) (*etree.Element, error) {
	var found *etree.Element
	var walk func(el *etree.Element)
	walk = func(el *etree.Element) {
		if found != nil {
			return
		}
		switch {
		case is(el, nsMD, "EntityDescriptor"):
			if len(children(el, nsMD, "IDPSSODescriptor")) == 0 {
				return
			}
			if entityID == "" || el.SelectAttrValue("entityID", "") == entityID {
				found = el
			}
		case is(el, nsMD, "EntitiesDescriptor"):
			for _, c := range el.ChildElements() {
				walk(c)
			}
		}
	}
	walk(root)
	if found == nil {
		return nil, errors.New("metadata: no broker EntityDescriptor with an IDPSSODescriptor")
	}
	return found, nil
}

func readKeyDescriptor(kd *etree.Element) (namedCert, error) {
	ki, err := mustChild(kd, nsDS, "KeyInfo")
	if err != nil {
		return namedCert{}, err
	}
	var nc namedCert
	for _, xd := range children(ki, nsDS, "X509Data") {
		for _, xc := range children(xd, nsDS, "X509Certificate") {
			txt, err := strictText(xc)
			if err != nil {
				return namedCert{}, err
			}
			der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(txt), ""))
			if err != nil {
				return namedCert{}, errors.New("bad X509Certificate")
			}
			if nc.cert, err = x509.ParseCertificate(der); err != nil {
				return namedCert{}, err
			}
		}
	}
	if nc.cert == nil {
		return namedCert{}, errors.New("KeyDescriptor without X509Certificate")
	}
	for _, kn := range children(ki, nsDS, "KeyName") {
		name, err := strictText(kn)
		if err != nil {
			return namedCert{}, err
		}
		nc.names = append(nc.names, name)
	}
	nc.names = append(nc.names, keyNameAliases(nc.cert)...)
	return nc, nil
}

// brokerRetryGap is how long after a failed load of the broker's metadata
// the next use tries again; uses in between fail at once.
const brokerRetryGap = 5 * time.Second

// BrokerStatus is what the service provider knows of the broker's
// metadata, for health reports.
type BrokerStatus struct {
	// Source is the metadata's URL or file ("" for inline XML).
	Source string
	// LoadedAt is when the copy in use was loaded; zero when none is.
	LoadedAt time.Time
	// Err is why the last load failed, nil when it succeeded.
	Err error
	// FailingSince is when loads started failing.
	FailingSince time.Time
}

// brokerLoads is the record of loads of the broker's metadata.
type brokerLoads struct {
	mu           sync.Mutex
	lastTry      time.Time
	lastErr      error
	failingSince time.Time
}

func (s MetadataSource) source() string {
	if s.URL != "" {
		return s.URL
	}
	return s.File
}

// BrokerStatus reports the state of the broker's metadata. It is cheap.
func (sp *ServiceProvider) BrokerStatus() BrokerStatus {
	sp.loads.mu.Lock()
	defer sp.loads.mu.Unlock()
	st := BrokerStatus{Source: sp.cfg.BrokerMetadata.source(), Err: sp.loads.lastErr, FailingSince: sp.loads.failingSince}
	if m := sp.meta.Load(); m != nil {
		st.LoadedAt = m.loadedAt
	}
	return st
}

// metadata returns the broker metadata in use and, when it is due, starts a
// background reload that keeps the current copy if it fails. Without any
// copy it loads one now, at most once per brokerRetryGap; until that
// works, logins fail with CodeBrokerUnavailable.
func (sp *ServiceProvider) metadata(ctx context.Context) (*brokerMetadata, error) {
	if m := sp.meta.Load(); m != nil {
		if sp.refreshDue() && sp.refreshing.CompareAndSwap(false, true) {
			go func() {
				defer sp.refreshing.Store(false)
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				_ = sp.RefreshMetadata(ctx)
			}()
		}
		return m, nil
	}
	// One use at a time tries: the others meanwhile fail at once.
	sp.loads.mu.Lock()
	now := sp.cfg.Now()
	retry := sp.loads.lastTry.IsZero() || now.Sub(sp.loads.lastTry) >= brokerRetryGap
	if retry {
		sp.loads.lastTry = now
	}
	sp.loads.mu.Unlock()
	if retry {
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		_ = sp.RefreshMetadata(ctx)
	}
	if m := sp.meta.Load(); m != nil {
		return m, nil
	}
	sp.loads.mu.Lock()
	defer sp.loads.mu.Unlock()
	return nil, wrapErr(CodeBrokerUnavailable, sp.loads.lastErr, "the broker's metadata is not loaded")
}

// refreshDue reports whether the broker's metadata should be loaded again:
// it is older than the refresh interval, or the last load failed a retry
// gap ago.
func (sp *ServiceProvider) refreshDue() bool {
	src := sp.cfg.BrokerMetadata
	if !src.reloadable() {
		return false
	}
	now := sp.cfg.Now()
	sp.loads.mu.Lock()
	defer sp.loads.mu.Unlock()
	if sp.loads.lastErr != nil {
		return now.Sub(sp.loads.lastTry) >= brokerRetryGap
	}
	m := sp.meta.Load()
	return m == nil || now.Sub(m.loadedAt) >= src.refreshInterval()
}

// RefreshIfDue reloads the broker metadata when refreshDue says so; a
// failure is in BrokerStatus and the log.
func (sp *ServiceProvider) RefreshIfDue(ctx context.Context) {
	if sp.refreshDue() {
		_ = sp.RefreshMetadata(ctx)
	}
}

// RefreshMetadata reloads the broker metadata now. On failure the previous
// copy stays in use and the error is returned. The log hears of the first
// failure in a row (a warning with the source and the reason) and of the
// load that ends it, not of each retry.
func (sp *ServiceProvider) RefreshMetadata(ctx context.Context) error {
	raw, err := sp.cfg.BrokerMetadata.fetch(ctx)
	var m *brokerMetadata
	if err == nil {
		m, err = parseBrokerMetadata(raw, sp.cfg.BrokerMetadata, sp.cfg.Now())
	}
	src := zap.String("source", sp.cfg.BrokerMetadata.source())
	sp.loads.mu.Lock()
	defer sp.loads.mu.Unlock()
	now := sp.cfg.Now()
	sp.loads.lastTry = now
	if err != nil {
		err = fmt.Errorf("broker metadata: %w", err)
		switch {
		case sp.loads.lastErr != nil:
			sp.log.Debug("eherkenning: the broker's metadata still cannot be loaded", src, zap.Error(err))
		case sp.meta.Load() != nil:
			sp.loads.failingSince = now
			sp.log.Warn("eherkenning: the broker's metadata cannot be loaded; keeping the last good copy, retrying", src, zap.Error(err))
		default:
			sp.loads.failingSince = now
			sp.log.Warn("eherkenning: the broker's metadata cannot be loaded; logins with eHerkenning fail until it can, retrying", src, zap.Error(err))
		}
		sp.loads.lastErr = err
		return err
	}
	if sp.loads.lastErr != nil {
		sp.log.Info("eherkenning: the broker's metadata is loaded again", src, zap.String("broker", m.entityID))
	}
	sp.loads.lastErr, sp.loads.failingSince = nil, time.Time{}
	sp.meta.Store(m)
	return nil
}

// BrokerEntityID returns the broker's entityID from the metadata in use,
// "" when none is loaded.
func (sp *ServiceProvider) BrokerEntityID() string {
	if m := sp.meta.Load(); m != nil {
		return m.entityID
	}
	return ""
}
