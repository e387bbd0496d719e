package eherkenning

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"
	"go.uber.org/zap"
)

// keyState is the key set a ServiceProvider works from: the current key
// signs, every key decrypts (current first).
type keyState struct {
	set        KeySet
	signer     signer
	decrypters []decrypter
	readAt     time.Time
}

func newKeyState(set KeySet, entityID string, readAt time.Time) *keyState {
	cur := set.Current()
	st := &keyState{set: set, signer: signer{key: cur.SigningKey, cert: cur.SigningCert}, readAt: readAt}
	for _, k := range set.Keys {
		st.decrypters = append(st.decrypters, decrypter{entityID: entityID, key: k.EncryptionKey, cert: k.EncryptionCert})
	}
	return st
}

// initKeys adopts the stored key set, storing the configured pairs as its
// current key when the store holds none.
func (sp *ServiceProvider) initKeys() error {
	now := sp.cfg.Now()
	seed := KeySet{Keys: []SPKey{{Role: RoleCurrent, SigningKey: sp.cfg.SigningKey, SigningCert: sp.cfg.SigningCert,
		EncryptionKey: sp.cfg.EncryptionKey, EncryptionCert: sp.cfg.EncryptionCert, Published: now.UTC()}}}
	if sp.cfg.Keys == nil {
		sp.keys.Store(newKeyState(seed, sp.cfg.EntityID, now))
		return nil
	}
	raw, err := sp.cfg.Keys.Secret(KeySetSecret, seed.Marshal)
	if err != nil {
		return fmt.Errorf("eherkenning: reading the key set: %w", err)
	}
	set, err := ParseKeySet(raw)
	if err != nil {
		return err
	}
	sp.keys.Store(newKeyState(set, sp.cfg.EntityID, now))
	return nil
}

// KeySet returns the key set in use.
func (sp *ServiceProvider) KeySet() KeySet { return sp.active().set }

// ReloadKeys reads the key set from the store now, so a change made on
// this server takes effect at once; other servers read it within a minute.
// On failure the set read before stays in use.
func (sp *ServiceProvider) ReloadKeys() error {
	now := sp.cfg.Now()
	old := sp.keys.Load()
	set, err := LoadKeySet(sp.cfg.Keys)
	if err != nil {
		retry := *old
		retry.readAt = now
		sp.keys.Store(&retry)
		return fmt.Errorf("eherkenning: reading the key set: %w", err)
	}
	if cur := set.Current().Fingerprint(); cur != old.set.Current().Fingerprint() {
		sp.log.Info("eHerkenning signing key changed", zap.String("current", cur), zap.String("before", old.set.Current().Fingerprint()))
	}
	sp.keys.Store(newKeyState(set, sp.cfg.EntityID, now))
	return nil
}

// active returns the key set in use, read again from the store first when
// it is a minute old (by the one caller that claims the read; the others
// carry on with the set in memory).
func (sp *ServiceProvider) active() *keyState {
	st := sp.keys.Load()
	if sp.cfg.Keys == nil || sp.cfg.Now().Sub(st.readAt) < keySetReadEvery || !sp.rereading.CompareAndSwap(false, true) {
		return st
	}
	defer sp.rereading.Store(false)
	if err := sp.ReloadKeys(); err != nil {
		sp.log.Warn("the eHerkenning key set could not be read again; the one read before stays in use", zap.Error(err))
	}
	return sp.keys.Load()
}

// signing returns the signer of the current key.
func (sp *ServiceProvider) signing() signer { return sp.active().signer }

// decrypt opens an encrypted element with whichever of our keys it was
// encrypted to: the current, next or an old one not yet retired.
func (sp *ServiceProvider) decrypt(el *etree.Element) (*etree.Element, error) {
	st := sp.active()
	var notForUs error
	for _, d := range st.decrypters {
		out, err := d.decrypt(el)
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, errNotForUs) {
			return nil, err
		}
		notForUs = err
	}
	names := make([]string, 0, len(st.set.Keys))
	for _, k := range st.set.Keys {
		names = append(names, KeyName(k.EncryptionCert)[:16]+" ("+k.Role+")")
	}
	return nil, fmt.Errorf("%w; our keys are %s: the key it was encrypted to was retired, or the broker's copy of our metadata is out of date",
		notForUs, strings.Join(names, ", "))
}
