package caddymodule

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"

	"github.com/wijtechniek/wijgate/caddymodule/eherkenning"
)

// EHerkenningConfig configures the eHerkenning service provider: who we
// are towards the broker (Herkenningsmakelaar), with which keys, and
// which broker we trust.
type EHerkenningConfig struct {
	// EntityID is ours, `urn:etoegang:DV:<OIN>:entities:<n>`.
	EntityID string `json:"entity_id,omitempty"`
	// ACSURL is the exact URL of our assertion consumer service, as in our
	// metadata. Default: the portal URL + `/eherkenning/acs`.
	ACSURL string `json:"acs_url,omitempty"`
	// SigningCert and SigningKey are PEM files (a PKIoverheid certificate
	// for a real broker). Empty: a key pair is generated once and kept in
	// the store — enough for the simulator, never for a real broker.
	// Either way the pair only seeds the key set kept in the store (its
	// first current key); `wijgate eherkenning keys` rolls it from there,
	// and files the set no longer holds refuse a start.
	SigningCert string `json:"signing_cert,omitempty"`
	SigningKey  string `json:"signing_key,omitempty"`
	// EncryptionCert and EncryptionKey decrypt the identifiers; default the
	// signing pair.
	EncryptionCert string `json:"encryption_cert,omitempty"`
	EncryptionKey  string `json:"encryption_key,omitempty"`
	// BrokerMetadata is the broker's metadata: a file path or an http(s)
	// URL, refreshed every MetadataRefresh; the last good copy stays in
	// use when a refresh fails.
	BrokerMetadata string `json:"broker_metadata,omitempty"`
	// BrokerEntityID picks the broker in a metadata file with several.
	BrokerEntityID string `json:"broker_entity_id,omitempty"`
	// BrokerMetadataCerts are PEM files of certificates that must have
	// signed the metadata (brokers sign it as a whole).
	BrokerMetadataCerts []string `json:"broker_metadata_certs,omitempty"`
	// MetadataRefresh is how often the broker's metadata is reloaded.
	// Default 1h.
	MetadataRefresh caddy.Duration `json:"metadata_refresh,omitempty"`
	// ServiceID (`urn:etoegang:DV:<OIN>:services:<n>`) and ServiceUUID are
	// our service's entries in the dienstcatalogus.
	ServiceID   string `json:"service_id,omitempty"`
	ServiceUUID string `json:"service_uuid,omitempty"`
	// AttributeConsumingServiceIndex defaults to the <n> of ServiceID.
	AttributeConsumingServiceIndex int `json:"attribute_consuming_service_index,omitempty"`
	// MinLevel is the lowest level accepted (`loa3` = EH3, the default).
	MinLevel string `json:"min_level,omitempty"`
	// RequestedAuthnContext also puts MinLevel in the AuthnRequest.
	RequestedAuthnContext bool `json:"requested_authn_context,omitempty"`
	// ArtifactClientCert and ArtifactClientKey are PEM files of a TLS
	// client certificate for resolving artifacts, when the broker wants one.
	ArtifactClientCert string `json:"artifact_client_cert,omitempty"`
	ArtifactClientKey  string `json:"artifact_client_key,omitempty"`
}

// provisionEHerkenning builds the service provider. The broker's metadata
// is not needed for that: our own metadata is served whatever the broker's
// state, and the broker is checked once the server is serving (the
// metadata may come from this very server, the simulator).
func (a *App) provisionEHerkenning(repl *caddy.Replacer) (*eherkenning.ServiceProvider, error) {
	c := a.EHerkenning
	if c == nil {
		return nil, nil
	}
	if c.EntityID == "" || c.BrokerMetadata == "" || c.ServiceID == "" {
		return nil, errors.New("eherkenning: entity_id, broker_metadata and service_id are required")
	}
	r := func(s string) string { return repl.ReplaceAll(s, "") }
	signKey, signCert, err := a.keyPair(r(c.SigningCert), r(c.SigningKey), "eherkenning-sp-signing")
	if err != nil {
		return nil, fmt.Errorf("eherkenning signing key: %w", err)
	}
	encKey, encCert := signKey, signCert
	if c.EncryptionCert != "" || c.EncryptionKey != "" {
		if encKey, encCert, err = a.keyPair(r(c.EncryptionCert), r(c.EncryptionKey), ""); err != nil {
			return nil, fmt.Errorf("eherkenning encryption key: %w", err)
		}
	}
	var trusted []*x509.Certificate
	for _, f := range c.BrokerMetadataCerts {
		cert, err := readCert(r(f))
		if err != nil {
			return nil, fmt.Errorf("broker_metadata_certs: %w", err)
		}
		trusted = append(trusted, cert)
	}
	src := eherkenning.MetadataSource{
		EntityID:        r(c.BrokerEntityID),
		TrustedCerts:    trusted,
		RefreshInterval: time.Duration(c.MetadataRefresh),
	}
	if md := r(c.BrokerMetadata); strings.HasPrefix(md, "http://") || strings.HasPrefix(md, "https://") {
		src.URL = md
	} else {
		src.File = md
	}
	client := &http.Client{Timeout: 10 * time.Second}
	if c.ArtifactClientCert != "" {
		pair, err := tls.LoadX509KeyPair(r(c.ArtifactClientCert), r(c.ArtifactClientKey))
		if err != nil {
			return nil, fmt.Errorf("artifact client certificate: %w", err)
		}
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}}
	}
	acs := r(c.ACSURL)
	if acs == "" {
		if a.PortalURL == "" {
			return nil, errors.New("eherkenning: set acs_url, or portal_url to derive it")
		}
		acs = strings.TrimSuffix(a.PortalURL, "/") + "/eherkenning/acs"
	}
	cfg := eherkenning.Config{
		EntityID: r(c.EntityID), ACSURL: acs,
		SigningKey: signKey, SigningCert: signCert, EncryptionKey: encKey, EncryptionCert: encCert,
		BrokerMetadata: src, ServiceID: r(c.ServiceID), ServiceUUID: r(c.ServiceUUID),
		AttributeConsumingServiceIndex: c.AttributeConsumingServiceIndex,
		MinLevel:                       c.MinLevel, RequestedAuthnContext: c.RequestedAuthnContext,
		ArtifactClient: client, Now: now, Logger: a.logger.Named("eherkenning"),
		Keys: a.engine,
	}
	sp, err := eherkenning.NewWithoutBrokerMetadata(cfg, a.engine)
	if err != nil {
		return nil, err
	}
	// The stored key set rules once it exists: configured files only seed
	// it. Files it does not hold mean a rollover done by swapping files,
	// which would publish and sign with keys the set does not know.
	if c.SigningCert != "" && !sp.KeySet().Holds(signCert) {
		return nil, fmt.Errorf("eherkenning: signing_cert %s (fingerprint %s) is not in the stored key set, whose current key is %s: "+
			"roll to a new certificate with `wijgate eherkenning keys add --cert F --key F` and `activate`, then point signing_cert and signing_key at it; "+
			"or name the current key's files again",
			r(c.SigningCert), eherkenning.KeyName(signCert), sp.KeySet().Current().Fingerprint())
	}
	a.serviceProvider = sp
	return sp, nil
}

// brokerCheckInterval is how often the broker's metadata is looked at in
// the background: reloaded when it is due, retried while it fails.
const brokerCheckInterval = time.Minute

// brokerWatch loads the broker's metadata when the server has started and
// keeps it fresh, so a broker that is down is a warning in the log and in
// /healthz at start, not news to the first person who logs in. The
// service provider may come after the start, when the storage that keeps
// its keys answers late.
type brokerWatch struct {
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	sp      *eherkenning.ServiceProvider
	started bool // this configuration's servers listen
	running bool
	// afterCheck runs after each look at the broker's metadata: the
	// certificates' expiry warnings.
	afterCheck func()
}

// watchBroker makes the broker watch and has it start with the servers.
func watchBroker(ctx caddy.Context) (*brokerWatch, error) {
	watchCtx, cancel := context.WithCancel(context.Background())
	w := &brokerWatch{ctx: watchCtx, cancel: cancel, done: make(chan struct{})}
	events, err := ctx.App("events")
	if err != nil {
		return nil, err
	}
	if err := events.(*caddyevents.App).On("started", w); err != nil {
		return nil, err
	}
	return w, nil
}

// Handle runs on Caddy's "started" event, when this configuration's
// servers listen.
func (w *brokerWatch) Handle(context.Context, caddy.Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.started = true
	w.runIfDue()
	return nil
}

// watch sets the service provider whose broker is watched.
func (w *brokerWatch) watch(sp *eherkenning.ServiceProvider) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sp = sp
	w.runIfDue()
}

func (w *brokerWatch) runIfDue() {
	if w.started && w.sp != nil && !w.running && w.ctx.Err() == nil {
		w.running = true
		go w.run(w.ctx, w.sp)
	}
}

func (w *brokerWatch) run(ctx context.Context, sp *eherkenning.ServiceProvider) {
	defer close(w.done)
	tick := time.NewTicker(brokerCheckInterval)
	defer tick.Stop()
	for {
		check, cancel := context.WithTimeout(ctx, 15*time.Second)
		sp.RefreshIfDue(check)
		cancel()
		if w.afterCheck != nil {
			w.afterCheck()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// stop ends the watch and waits for it.
func (w *brokerWatch) stop() {
	if w == nil {
		return
	}
	w.cancel()
	w.mu.Lock()
	running := w.running
	w.mu.Unlock()
	if running {
		<-w.done
	}
}

// keyPair reads a PEM certificate and key, or, with both paths empty and
// a secret name, generates a pair once and keeps it in the store.
func (a *App) keyPair(certFile, keyFile, secret string) (*rsa.PrivateKey, *x509.Certificate, error) {
	if certFile != "" || keyFile != "" {
		certPEM, err := os.ReadFile(certFile)
		if err != nil {
			return nil, nil, err
		}
		keyPEM, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, nil, err
		}
		return eherkenning.ParseKeyPair(certPEM, keyPEM)
	}
	if secret == "" {
		return nil, nil, errors.New("certificate and key files are required")
	}
	return a.StoredKeyPair(secret, func() (*rsa.PrivateKey, *x509.Certificate, error) {
		return eherkenning.GenerateKeyPair("wijgate " + secret)
	})
}

// StoredKeyPair returns the RSA key pair kept in the store under name,
// made by generate the first time, so a certificate published in metadata
// stays the same across restarts. Development modules (the simulator) keep
// their keys with it too.
func (a *App) StoredKeyPair(name string, generate func() (*rsa.PrivateKey, *x509.Certificate, error)) (*rsa.PrivateKey, *x509.Certificate, error) {
	raw, err := a.engine.Secret(name, func() ([]byte, error) {
		key, cert, err := generate()
		if err != nil {
			return nil, err
		}
		return json.Marshal([]string{
			string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
			string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
		})
	})
	if err != nil {
		return nil, nil, err
	}
	var pair []string
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
		return nil, nil, fmt.Errorf("stored key pair %s is corrupt", name)
	}
	return eherkenning.ParseKeyPair([]byte(pair[0]), []byte(pair[1]))
}

func readCert(file string) (*x509.Certificate, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return x509.ParseCertificate(block.Bytes)
}
