package eherkenning

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Levels of assurance, lowest first. EH2 = loa2, EH2+ = loa2plus, EH3 =
// loa3, EH4 = loa4.
const (
	LevelLoA2     = "urn:etoegang:core:assurance-class:loa2"
	LevelLoA2Plus = "urn:etoegang:core:assurance-class:loa2plus"
	LevelLoA3     = "urn:etoegang:core:assurance-class:loa3"
	LevelLoA4     = "urn:etoegang:core:assurance-class:loa4"
)

var levelRank = map[string]int{LevelLoA2: 2, LevelLoA2Plus: 3, LevelLoA3: 4, LevelLoA4: 5}

// NormalizeLevel turns "loa3", "EH3" or the full URN into the URN; it
// returns "" for anything else.
func NormalizeLevel(s string) string {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "loa2", "eh2":
		return LevelLoA2
	case "loa2plus", "eh2+", "eh2plus":
		return LevelLoA2Plus
	case "loa3", "eh3":
		return LevelLoA3
	case "loa4", "eh4":
		return LevelLoA4
	}
	if levelRank[s] > 0 {
		return s
	}
	return ""
}

// ShortLevel returns "loa3" for the loa3 URN, and so on.
func ShortLevel(urn string) string {
	return strings.TrimPrefix(urn, "urn:etoegang:core:assurance-class:")
}

// Config configures a [ServiceProvider].
type Config struct {
	// EntityID is ours: urn:etoegang:DV:<OIN>:entities:<n>.
	EntityID string
	// ACSURL is the exact absolute URL of our assertion consumer service.
	ACSURL string
	// SigningKey and SigningCert sign AuthnRequests, ArtifactResolves, the
	// metadata and the catalogue (RSA, at least 2048 bits).
	SigningKey  *rsa.PrivateKey
	SigningCert *x509.Certificate
	// EncryptionKey and EncryptionCert decrypt the identifiers; they may be
	// the signing pair.
	EncryptionKey  *rsa.PrivateKey
	EncryptionCert *x509.Certificate
	// Keys, when set, keeps the key set (see KeySet) that every server on
	// the store shares: the pairs above are its current key when it holds
	// none yet, and it is read again every minute. Without it the pairs
	// above are the only key.
	Keys KeyStore
	// BrokerMetadata is the Herkenningsmakelaar's metadata.
	BrokerMetadata MetadataSource
	// ServiceID (urn:etoegang:DV:<OIN>:services:<n>) and ServiceUUID are
	// those of our service in the dienstcatalogus; the broker echoes both.
	ServiceID   string
	ServiceUUID string
	// AttributeConsumingServiceIndex is the <n> of ServiceID; 0 derives it
	// from ServiceID.
	AttributeConsumingServiceIndex int
	// ServiceName names the AttributeConsumingService in our metadata
	// (default "Verificatie Wij Techniek account").
	ServiceName string
	// MinLevel is the lowest level accepted: loa2 < loa2plus < loa3 <
	// loa4 (default loa3). Short names and URNs are accepted.
	MinLevel string
	// RequestedAuthnContext adds RequestedAuthnContext Comparison="minimum"
	// with MinLevel to the AuthnRequest. The profile prefers leaving the
	// level to the catalogue, so it is off by default.
	RequestedAuthnContext bool
	// RequestBinding is how the AuthnRequest travels: BindingHTTPPost or
	// BindingHTTPRedirect. Empty picks POST when the broker offers it, else
	// Redirect.
	RequestBinding string
	// ResponseBinding is the ProtocolBinding we ask for: BindingHTTPArtifact
	// (default, the profile's) or BindingHTTPPost.
	ResponseBinding string
	// ArtifactClient resolves artifacts; set one with a TLS client
	// certificate when the broker requires it. Default: 10 s timeout.
	ArtifactClient *http.Client
	// RequestTTL is how long a started login may take (default 20 min).
	RequestTTL time.Duration
	// MaxClockSkew is the tolerance on time conditions (default 180 s).
	MaxClockSkew time.Duration
	// MaxIssueDelay is how old a Response's IssueInstant may be (default
	// 90 s).
	MaxIssueDelay time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives operator messages (default: none).
	Logger *zap.Logger
}

var (
	reDVEntity  = regexp.MustCompile(`^urn:etoegang:DV:([0-9]{20}):entities:([0-9]+)$`)
	reDVService = regexp.MustCompile(`^urn:etoegang:DV:([0-9]{20}):services:([0-9]+)$`)
)

// ParseEntityID returns the OIN of one of our entityIDs,
// urn:etoegang:DV:<OIN>:entities:<n>.
func ParseEntityID(id string) (oin string, err error) {
	m := reDVEntity.FindStringSubmatch(id)
	if m == nil {
		return "", fmt.Errorf("%q is not urn:etoegang:DV:<OIN>:entities:<n> (an OIN has 20 digits)", id)
	}
	return m[1], nil
}

// ParseServiceID returns the OIN and index of one of our services,
// urn:etoegang:DV:<OIN>:services:<n>; the index is at least 1.
func ParseServiceID(id string) (oin string, index int, err error) {
	m := reDVService.FindStringSubmatch(id)
	if m == nil {
		return "", 0, fmt.Errorf("%q is not urn:etoegang:DV:<OIN>:services:<n> (an OIN has 20 digits)", id)
	}
	index, err = strconv.Atoi(m[2])
	if err != nil || index < 1 {
		return "", 0, fmt.Errorf("%q: the service index must be a number of at least 1", id)
	}
	return m[1], index, nil
}

// CheckACSURL refuses an assertion consumer service address that is not
// an absolute http(s) URL without a fragment: the broker compares it byte
// for byte.
func CheckACSURL(acs string) error {
	u, err := url.Parse(acs)
	if err != nil || !u.IsAbs() || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" {
		return fmt.Errorf("%q must be an absolute http(s) URL without a fragment", acs)
	}
	return nil
}

// CheckMetadataURL refuses a broker metadata address that is not an
// absolute http(s) URL with a host.
func CheckMetadataURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL with a host", raw)
	}
	return nil
}

// ServiceProvider is the eHerkenning SP. It is safe for concurrent use.
type ServiceProvider struct {
	cfg        Config
	oin        string
	minLevel   string
	state      StateStore
	keys       atomic.Pointer[keyState]
	rereading  atomic.Bool
	log        *zap.Logger
	meta       atomic.Pointer[brokerMetadata]
	refreshing atomic.Bool
	loads      brokerLoads
}

// New checks cfg, loads the broker metadata once and returns the SP.
func New(cfg Config, state StateStore) (*ServiceProvider, error) {
	sp, err := NewWithoutBrokerMetadata(cfg, state)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := sp.RefreshMetadata(ctx); err != nil {
		return nil, fmt.Errorf("eherkenning: %w", err)
	}
	return sp, nil
}

// NewWithoutBrokerMetadata checks cfg and returns the SP without loading
// the broker's metadata: our own metadata does not depend on the broker.
// The first use loads it (see RefreshMetadata and BrokerStatus).
func NewWithoutBrokerMetadata(cfg Config, state StateStore) (*ServiceProvider, error) {
	if state == nil {
		return nil, errors.New("eherkenning: a StateStore is required")
	}
	oin, err := ParseEntityID(cfg.EntityID)
	if err != nil {
		return nil, fmt.Errorf("eherkenning: EntityID %w", err)
	}
	serviceOIN, idx, err := ParseServiceID(cfg.ServiceID)
	if err != nil {
		return nil, fmt.Errorf("eherkenning: ServiceID %w", err)
	}
	if serviceOIN != oin {
		return nil, fmt.Errorf("eherkenning: ServiceID %q is not urn:etoegang:DV:%s:services:<n>", cfg.ServiceID, oin)
	}
	if cfg.AttributeConsumingServiceIndex == 0 {
		cfg.AttributeConsumingServiceIndex = idx
	} else if cfg.AttributeConsumingServiceIndex != idx {
		return nil, fmt.Errorf("eherkenning: AttributeConsumingServiceIndex %d differs from the ServiceID index %d", cfg.AttributeConsumingServiceIndex, idx)
	}
	if strings.TrimSpace(cfg.ServiceUUID) == "" {
		return nil, errors.New("eherkenning: ServiceUUID is required")
	}
	if err := CheckACSURL(cfg.ACSURL); err != nil {
		return nil, fmt.Errorf("eherkenning: ACSURL %w", err)
	}
	for name, pair := range map[string]struct {
		k *rsa.PrivateKey
		c *x509.Certificate
	}{"signing": {cfg.SigningKey, cfg.SigningCert}, "encryption": {cfg.EncryptionKey, cfg.EncryptionCert}} {
		if pair.k == nil || pair.c == nil {
			return nil, fmt.Errorf("eherkenning: %s key and certificate are required", name)
		}
		pub, ok := pair.c.PublicKey.(*rsa.PublicKey)
		if !ok || !pub.Equal(&pair.k.PublicKey) {
			return nil, fmt.Errorf("eherkenning: %s certificate does not match its RSA key", name)
		}
		if pair.k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("eherkenning: %s key is shorter than 2048 bits", name)
		}
	}
	if cfg.MinLevel == "" {
		cfg.MinLevel = "loa3"
	}
	minLevel := NormalizeLevel(cfg.MinLevel)
	if minLevel == "" {
		return nil, fmt.Errorf("eherkenning: unknown MinLevel %q", cfg.MinLevel)
	}
	switch cfg.RequestBinding {
	case "", BindingHTTPPost, BindingHTTPRedirect:
	default:
		return nil, fmt.Errorf("eherkenning: RequestBinding %q not supported", cfg.RequestBinding)
	}
	switch cfg.ResponseBinding {
	case "":
		cfg.ResponseBinding = BindingHTTPArtifact
	case BindingHTTPArtifact, BindingHTTPPost:
	default:
		return nil, fmt.Errorf("eherkenning: ResponseBinding %q not supported", cfg.ResponseBinding)
	}
	if err := cfg.BrokerMetadata.validate(); err != nil {
		return nil, fmt.Errorf("eherkenning: %w", err)
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "Verificatie Wij Techniek account"
	}
	if cfg.ArtifactClient == nil {
		cfg.ArtifactClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.RequestTTL <= 0 {
		cfg.RequestTTL = 20 * time.Minute
	}
	if cfg.MaxClockSkew <= 0 {
		cfg.MaxClockSkew = 180 * time.Second
	}
	if cfg.MaxIssueDelay <= 0 {
		cfg.MaxIssueDelay = 90 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	sp := &ServiceProvider{
		cfg:      cfg,
		oin:      oin,
		minLevel: minLevel,
		state:    state,
		log:      cfg.Logger,
	}
	if err := sp.initKeys(); err != nil {
		return nil, err
	}
	return sp, nil
}

// EntityID returns our entityID.
func (sp *ServiceProvider) EntityID() string { return sp.cfg.EntityID }

// StateStore keeps the service provider's state: tracked requests, the
// replay cache and parked results. It must survive restarts and be
// shared by every instance serving the ACS, and each take must be atomic:
// of two concurrent takes of one record, one gets it.
type StateStore interface {
	// TrackRequest stores r until r.ExpiresAt.
	TrackRequest(ctx context.Context, r TrackedRequest) error
	// TakeRequest returns and deletes the request with this ID; a second
	// take fails with ErrUnknownRequest. The caller checks expiry.
	TakeRequest(ctx context.Context, requestID string) (TrackedRequest, error)
	// MarkAssertionSeen records the key until the given time and reports
	// whether this was the first time it was seen. It must be atomic.
	MarkAssertionSeen(ctx context.Context, assertionKey string, until time.Time) (first bool, err error)
	// ParkResult stores p under key until p.ExpiresAt.
	ParkResult(ctx context.Context, key string, p ParkedResult) error
	// TakeParkedResult returns and deletes what is parked under key; a
	// second take fails with ErrUnknownResult. The caller checks expiry.
	TakeParkedResult(ctx context.Context, key string) (ParkedResult, error)
}

// TrackedRequest is one started login.
type TrackedRequest struct {
	// ID is the AuthnRequest ID; the answer's InResponseTo must equal it.
	ID string
	// RelayState is the opaque token sent along; the answer must carry it
	// back unchanged.
	RelayState string
	// AccountID is the account that started the login.
	AccountID string
	// BrowserBinding is a hash of a secret held by the browser that started
	// the login. The caller must check it (and the account's session) before
	// acting on a [Result], because the broker's answer arrives cross-site.
	BrowserBinding string
	// ReturnTo is where the person wanted to go afterwards.
	ReturnTo  string
	CreatedAt time.Time
	ExpiresAt time.Time
}
