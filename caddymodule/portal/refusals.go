package portal

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

// Refused attempts go to the operator's log, but one account trying again
// and again must not flood it: each account gets at most one line per
// refusalLogInterval, and the next line says how many were held back.
const (
	refusalLogInterval = time.Minute
	// refusalLogActors bounds how many accounts are remembered at once.
	refusalLogActors = 1024
)

// refusalLog writes refused attempts to the operator's log, rate-limited
// per account.
type refusalLog struct {
	logger *zap.Logger
	now    func() time.Time

	mu sync.Mutex
	// actors holds, per account, when its last line was written and how
	// many lines were held back since.
	actors map[string]*refusalCount
	// others counts lines held back because actors was full.
	others int
}

type refusalCount struct {
	logged time.Time
	held   int
}

func newRefusalLog(logger *zap.Logger, now func() time.Time) *refusalLog {
	return &refusalLog{logger: logger, now: now, actors: map[string]*refusalCount{}}
}

// log writes one refusal by actor, unless actor had a line less than
// refusalLogInterval ago.
func (l *refusalLog) log(actor string, fields ...zap.Field) {
	now := l.now()
	l.mu.Lock()
	c, ok := l.actors[actor]
	if ok && now.Sub(c.logged) < refusalLogInterval {
		c.held++
		l.mu.Unlock()
		return
	}
	if !ok && len(l.actors) >= refusalLogActors {
		l.forgetQuiet(now)
		if len(l.actors) >= refusalLogActors {
			l.others++
			l.mu.Unlock()
			return
		}
	}
	held := 0
	if ok {
		held = c.held
	}
	others := l.others
	l.others = 0
	l.actors[actor] = &refusalCount{logged: now}
	l.mu.Unlock()
	fields = append(fields, zap.String("account", actor), zap.Int("held_back", held))
	if others > 0 {
		fields = append(fields, zap.Int("held_back_other_accounts", others))
	}
	l.logger.Warn("refused", fields...)
}

// forgetQuiet drops the accounts whose interval is over; their held-back
// count moves to others, so the next line still reports it.
func (l *refusalLog) forgetQuiet(now time.Time) {
	for actor, c := range l.actors {
		if now.Sub(c.logged) >= refusalLogInterval {
			l.others += c.held
			delete(l.actors, actor)
		}
	}
}
