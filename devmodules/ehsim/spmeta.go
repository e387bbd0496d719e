package ehsim

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// spCert is one certificate from the SP's metadata with its KeyName.
type spCert struct {
	cert *x509.Certificate
	name string
}

// spMetadata is what the simulator uses from the SP's metadata.
type spMetadata struct {
	entityID   string
	signing    []spCert
	encryption []spCert
	acs        map[string][]string // binding → locations
	// services maps AttributeConsumingService index → ServiceID (its first
	// RequestedAttribute); defaultService is the isDefault index.
	services       map[string]string
	defaultService string
	loadedAt       time.Time
}

func parseSPMetadata(raw []byte) (*spMetadata, error) {
	doc, err := parseUntrusted(raw)
	if err != nil {
		return nil, fmt.Errorf("SP metadata: %w", err)
	}
	ed := doc.Root()
	if !is(ed, nsMD, "EntityDescriptor") {
		return nil, errors.New("SP metadata: root is not an EntityDescriptor")
	}
	spd := first(ed, nsMD, "SPSSODescriptor")
	if spd == nil {
		return nil, errors.New("SP metadata: no SPSSODescriptor")
	}
	m := &spMetadata{entityID: ed.SelectAttrValue("entityID", ""), acs: map[string][]string{}, services: map[string]string{}}
	for _, kd := range children(spd, nsMD, "KeyDescriptor") {
		ki := first(kd, nsDS, "KeyInfo")
		if ki == nil {
			continue
		}
		xd := first(ki, nsDS, "X509Data")
		if xd == nil {
			continue
		}
		cert, err := certFromBase64(text(first(xd, nsDS, "X509Certificate")))
		if err != nil {
			return nil, fmt.Errorf("SP metadata: %w", err)
		}
		c := spCert{cert: cert, name: text(first(ki, nsDS, "KeyName"))}
		if c.name == "" {
			c.name = keyName(cert)
		}
		switch kd.SelectAttrValue("use", "") {
		case "signing":
			m.signing = append(m.signing, c)
		case "encryption":
			m.encryption = append(m.encryption, c)
		default:
			m.signing = append(m.signing, c)
			m.encryption = append(m.encryption, c)
		}
	}
	for _, a := range children(spd, nsMD, "AssertionConsumerService") {
		b := a.SelectAttrValue("Binding", "")
		m.acs[b] = append(m.acs[b], a.SelectAttrValue("Location", ""))
	}
	for _, acs := range children(spd, nsMD, "AttributeConsumingService") {
		idx := acs.SelectAttrValue("index", "")
		if ra := first(acs, nsMD, "RequestedAttribute"); ra != nil {
			m.services[idx] = ra.SelectAttrValue("Name", "")
		}
		if m.defaultService == "" || acs.SelectAttrValue("isDefault", "") == "true" {
			m.defaultService = idx
		}
	}
	if m.entityID == "" || len(m.signing) == 0 || len(m.encryption) == 0 {
		return nil, errors.New("SP metadata: entityID, signing and encryption keys are required")
	}
	return m, nil
}

// spMeta returns the SP's metadata, fetching it from SPMetadataURL at most
// once a minute.
func (s *Simulator) spMeta(ctx context.Context) (*spMetadata, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sp != nil && (s.cfg.SPMetadataURL == "" || s.now().Sub(s.sp.loadedAt) < time.Minute) {
		return s.sp, nil
	}
	raw := s.cfg.SPMetadata
	if s.cfg.SPMetadataURL != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.SPMetadataURL, nil)
		if err != nil {
			return nil, err
		}
		resp, err := s.client.Do(req)
		if err != nil {
			if s.sp != nil {
				return s.sp, nil
			}
			return nil, fmt.Errorf("fetching SP metadata: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("fetching SP metadata: %s", resp.Status)
		}
		if raw, err = io.ReadAll(io.LimitReader(resp.Body, maxMessage)); err != nil {
			return nil, err
		}
	}
	m, err := parseSPMetadata(raw)
	if err != nil {
		return nil, err
	}
	m.loadedAt = s.now()
	s.sp = m
	return m, nil
}
