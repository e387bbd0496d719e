package org

import (
	"errors"
	"slices"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// eHerkenning tells a service provider nothing when a machtiging is
// withdrawn, so an eh3 anchor holds for a while only: ReverifyAfter after
// the verification the admin is asked to verify again, and ReverifyGrace
// later the anchor lapses. Whether an anchor holds is computed when it is
// read, from VerifiedAt and the clock: no job has to run for access to
// end, and every replica sees the same. The background check
// (CheckReverify) only sends the reminders and records the lapse in the
// audit log.

// Default renewal periods.
const (
	// DefaultReverifyAfter is twelve months, counted as 365 days.
	DefaultReverifyAfter = 365 * 24 * time.Hour
	DefaultReverifyGrace = 30 * 24 * time.Hour
)

// Reminders go out a month and a week before an anchor lapses.
const (
	FirstReminderBefore  = 30 * 24 * time.Hour
	SecondReminderBefore = 7 * 24 * time.Hour
)

// The steps of storage.Membership.ReverifyStep, in order.
const (
	StepFirstReminder  = 1
	StepSecondReminder = 2
	StepLapsed         = 3
)

// AnchorStatus is where an eh3 anchor stands at a moment.
type AnchorStatus int

// The anchor statuses.
const (
	// AnchorHolds: verified less than ReverifyAfter ago.
	AnchorHolds AnchorStatus = iota
	// AnchorDue: past ReverifyAfter; it still holds, and the admin is
	// asked to verify again.
	AnchorDue
	// AnchorLapsed: not verified again within ReverifyGrace after that.
	AnchorLapsed
	// AnchorEnded: the broker answered that the person holds no
	// machtiging for the company.
	AnchorEnded
)

// Holds reports whether the anchor still makes its membership anchored.
func (st AnchorStatus) Holds() bool { return st == AnchorHolds || st == AnchorDue }

// String names the status for logs and page texts.
func (st AnchorStatus) String() string {
	return [...]string{"holds", "due", "lapsed", "ended"}[st]
}

func (s *Service) reverifyAfter() time.Duration {
	if s.ReverifyAfter > 0 {
		return s.ReverifyAfter
	}
	return DefaultReverifyAfter
}

func (s *Service) reverifyGrace() time.Duration {
	if s.ReverifyGrace > 0 {
		return s.ReverifyGrace
	}
	return DefaultReverifyGrace
}

// DueAt is when an eh3 anchor must be verified again.
func (s *Service) DueAt(m storage.Membership) time.Time { return m.VerifiedAt.Add(s.reverifyAfter()) }

// LapsesAt is when an eh3 anchor stops holding unless verified again.
func (s *Service) LapsesAt(m storage.Membership) time.Time { return s.DueAt(m).Add(s.reverifyGrace()) }

// AnchorStatus says where the eh3 anchor of m stands at now.
func (s *Service) AnchorStatus(m storage.Membership, now time.Time) AnchorStatus {
	switch {
	case !m.AnchorEndedAt.IsZero():
		return AnchorEnded
	case !now.Before(s.LapsesAt(m)):
		return AnchorLapsed
	case !now.Before(s.DueAt(m)):
		return AnchorDue
	}
	return AnchorHolds
}

// heldByAnotherAdmin is the fallback of a chain of invitations that
// reaches an admin whose own verification no longer holds: the colleagues
// they brought in stay anchored while another admin's verification holds,
// as they do when an admin leaves (reanchor), so only colleagues whose
// access rests on that verification alone lose it. until is the latest
// lapse among the holding verifications.
func (s *Service) heldByAnotherAdmin(kvk, except string, now time.Time) (bool, time.Time, error) {
	ms, err := s.Store.Members(kvk)
	if err != nil {
		return false, time.Time{}, err
	}
	var until time.Time
	for _, m := range ms {
		if m.AccountID != except && m.Role == RoleAdmin && m.Anchor == AnchorEH3 && s.AnchorStatus(m, now).Holds() {
			if l := s.LapsesAt(m); l.After(until) {
				until = l
			}
		}
	}
	return !until.IsZero(), until, nil
}

// Verification is the account's eh3 membership of the organisation and
// where it stands; storage.ErrNotFound when the account holds no eh3
// membership there.
func (s *Service) Verification(kvk, accountID string) (storage.Membership, AnchorStatus, error) {
	m, err := s.Store.Membership(kvk, accountID)
	if err == nil && m.Anchor != AnchorEH3 {
		err = storage.ErrNotFound
	}
	if err != nil {
		return storage.Membership{}, 0, err
	}
	return m, s.AnchorStatus(m, s.now()), nil
}

// EndAnchor ends the account's eh3 anchor for the organisation at once:
// the broker answered that the person holds no machtiging for it. ended
// is false when there was no holding anchor to end. The anchor comes back
// only with a new verification.
func (s *Service) EndAnchor(accountID, kvk string) (ended bool, err error) {
	now := s.now()
	err = s.Store.UpdateMembers(kvk, func(ms []storage.Membership) ([]storage.Membership, error) {
		ended = false
		i := slices.IndexFunc(ms, func(m storage.Membership) bool { return m.AccountID == accountID })
		if i < 0 || ms[i].Anchor != AnchorEH3 || !ms[i].AnchorEndedAt.IsZero() {
			return ms, nil
		}
		ms[i].AnchorEndedAt = now
		ended = true
		return ms, nil
	})
	if err == nil && ended {
		s.audit(kvk, accountID, "eh_ended", accountID, "no machtiging")
	}
	return ended, err
}

// ReverifyNotice is one step the check took for an eh3 anchor.
type ReverifyNotice struct {
	Organisation storage.Organisation
	// Membership is the anchor's, as it was when the step was taken.
	Membership storage.Membership
	// Step is StepFirstReminder, StepSecondReminder or StepLapsed.
	Step     int
	LapsesAt time.Time
	// Err is why the reminder could not be sent; it is sent again at the
	// next check.
	Err error
}

// stepDue is the step an anchor has reached at now. No reminder comes
// before the verification is due: with a reverify_grace shorter than a
// month (or a week) the first (or both) fall on DueAt, where only the
// last one reached is sent.
func (s *Service) stepDue(m storage.Membership, now time.Time) int {
	lapses, due := s.LapsesAt(m), s.DueAt(m)
	reached := func(before time.Duration) bool {
		at := lapses.Add(-before)
		if at.Before(due) {
			at = due
		}
		return !now.Before(at)
	}
	switch {
	case !now.Before(lapses):
		return StepLapsed
	case reached(SecondReminderBefore):
		return StepSecondReminder
	case reached(FirstReminderBefore):
		return StepFirstReminder
	}
	return 0
}

// CheckReverify takes the steps every eh3 anchor has reached: a reminder
// a month and a week before it lapses (remind sends it to the
// organisation's admins), and the lapse itself, recorded. Each step is
// claimed in the store before it is taken, in the organisation's
// transaction, so several replicas checking at once take it once; a
// reminder that could not be sent gives its claim back and is tried again
// at the next check. A step skipped while no check ran (a server down for
// weeks) is not taken late: only the last one reached is. It returns the
// steps taken or tried.
func (s *Service) CheckReverify(remind func(ReverifyNotice) error) ([]ReverifyNotice, error) {
	orgs, err := s.Store.Organisations()
	if err != nil {
		return nil, err
	}
	var out []ReverifyNotice
	for _, o := range orgs {
		ms, err := s.Store.Members(o.KvK)
		if err != nil {
			return out, err
		}
		for _, m := range ms {
			if m.Anchor != AnchorEH3 || !m.AnchorEndedAt.IsZero() {
				continue
			}
			step := s.stepDue(m, s.now())
			if step <= m.ReverifyStep {
				continue
			}
			claimed, err := s.claimStep(m, step)
			if err != nil {
				return out, err
			}
			if !claimed {
				continue
			}
			n := ReverifyNotice{Organisation: o, Membership: m, Step: step, LapsesAt: s.LapsesAt(m)}
			if step == StepLapsed {
				s.audit(o.KvK, m.AccountID, "eh_lapsed", m.AccountID, "verified "+m.VerifiedAt.UTC().Format(time.RFC3339))
			} else if n.Err = remind(n); n.Err != nil {
				if err := s.setStep(m, step, m.ReverifyStep); err != nil {
					n.Err = errors.Join(n.Err, err)
				}
			} else {
				s.audit(o.KvK, m.AccountID, "eh_reminder", m.AccountID, reminderName(step))
			}
			out = append(out, n)
		}
	}
	return out, nil
}

func reminderName(step int) string {
	if step == StepFirstReminder {
		return "month"
	}
	return "week"
}

// claimStep moves the anchor's step from what m holds to step, unless
// another check did first or the anchor was verified again meanwhile.
func (s *Service) claimStep(m storage.Membership, step int) (bool, error) {
	claimed := false
	err := s.Store.UpdateMembers(m.KvK, func(ms []storage.Membership) ([]storage.Membership, error) {
		claimed = false
		for i := range ms {
			if sameVerification(ms[i], m) && ms[i].ReverifyStep < step {
				ms[i].ReverifyStep = step
				claimed = true
			}
		}
		return ms, nil
	})
	return claimed, err
}

// setStep gives a claimed step back (from → to) when its reminder could
// not be sent.
func (s *Service) setStep(m storage.Membership, from, to int) error {
	return s.Store.UpdateMembers(m.KvK, func(ms []storage.Membership) ([]storage.Membership, error) {
		for i := range ms {
			if sameVerification(ms[i], m) && ms[i].ReverifyStep == from {
				ms[i].ReverifyStep = to
			}
		}
		return ms, nil
	})
}

// sameVerification reports whether a is still the verification b was
// read as: the same account's eh3 anchor, verified at the same moment.
func sameVerification(a, b storage.Membership) bool {
	return a.AccountID == b.AccountID && a.Anchor == AnchorEH3 && a.VerifiedAt.Equal(b.VerifiedAt) && a.AnchorEndedAt.IsZero()
}
