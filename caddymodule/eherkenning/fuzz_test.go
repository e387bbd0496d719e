package eherkenning

import (
	"bytes"
	"crypto/sha1" //nolint:gosec // builds artifacts with the profile's SourceID
	"encoding/base64"
	"encoding/binary"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/beevik/etree"
)

// fuzzSeeds returns a valid answer from the simulator, and the harness.
func fuzzSeeds(f *testing.F) (*harness, *LoginStart, []byte) {
	h := newHarness(f, harnessOpts{})
	start := h.start(f)
	raw, err := h.sim.BuildResponse(h.answer(start))
	if err != nil {
		f.Fatal(err)
	}
	return h, start, raw
}

// FuzzHandleResponse feeds arbitrary SAMLResponse documents to the ACS: it
// must never panic and never accept an unsigned forgery.
func FuzzHandleResponse(f *testing.F) {
	h, start, raw := fuzzSeeds(f)
	f.Add(raw)
	f.Add([]byte(billionLaughs + "<a/>"))
	f.Add([]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_1"/>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		res, err := h.postResponse(doc, start.RelayState)
		if err == nil && !bytes.Equal(doc, raw) {
			t.Fatalf("accepted a mutated response: %+v", res)
		}
	})
}

// fuzzTransport answers every request with the fuzzer's current bytes.
type fuzzTransport struct {
	mu   sync.Mutex
	body []byte
}

func (f *fuzzTransport) RoundTrip(*http.Request) (*http.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(bytes.NewReader(f.body)), Header: http.Header{}}, nil
}

// FuzzArtifactResponse feeds arbitrary SOAP answers to artifact
// resolution.
func FuzzArtifactResponse(f *testing.F) {
	h, start, raw := fuzzSeeds(f)
	f.Add([]byte(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>` + string(raw) + `</soapenv:Body></soapenv:Envelope>`))
	f.Add([]byte(billionLaughs))
	art := make([]byte, 44)
	binary.BigEndian.PutUint16(art, artifactTypeCode)
	src := sha1.Sum([]byte(h.sim.EntityID())) //nolint:gosec // SourceID definition
	copy(art[4:], src[:])
	artB64 := base64.StdEncoding.EncodeToString(art)
	ft := &fuzzTransport{}
	cfg := h.cfg
	cfg.ArtifactClient = &http.Client{Transport: ft}
	sp, err := New(cfg, h.store)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ft.mu.Lock()
		ft.body = body
		ft.mu.Unlock()
		v := url.Values{"SAMLart": {artB64}, "RelayState": {start.RelayState}}
		req, _ := http.NewRequest(http.MethodPost, h.acs, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if res, err := sp.HandleResponse(req); err == nil {
			t.Fatalf("accepted an unsigned artifact response: %+v", res)
		}
	})
}

// FuzzBrokerMetadata parses arbitrary broker metadata.
func FuzzBrokerMetadata(f *testing.F) {
	f.Add(readFixture(f))
	f.Add([]byte(`<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := parseBrokerMetadata(raw, MetadataSource{}, fixtureNow)
		if err == nil && (m.entityID == "" || len(m.signing) == 0) {
			t.Fatalf("accepted unusable metadata: %+v", m)
		}
	})
}

// FuzzDecrypt feeds arbitrary EncryptedID elements to the decrypter.
func FuzzDecrypt(f *testing.F) {
	h, _, raw := fuzzSeeds(f)
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		f.Fatal(err)
	}
	for _, eid := range doc.FindElements("//EncryptedID") {
		d := etree.NewDocument()
		d.SetRoot(eid.Copy())
		b, _ := d.WriteToBytes()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseXML(b)
		if err != nil {
			return
		}
		_, _ = h.sp.decrypt(d.Root())
	})
}
