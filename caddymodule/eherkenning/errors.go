package eherkenning

import (
	"errors"
	"fmt"
)

// Code classifies why an answer from the broker was not accepted, so the
// caller can show a plain-language page. The values are stable strings that
// may appear in logs and templates.
type Code string

// The codes returned in [Error.Code].
const (
	// CodeMalformed: the request or message could not be read: wrong
	// binding, not base64, not well-formed XML, a DTD or entity declaration,
	// too large, or missing required elements.
	CodeMalformed Code = "malformed"
	// CodeSignature: a required signature is missing or invalid, was made
	// with a key the broker metadata does not list, or uses SHA-1.
	CodeSignature Code = "signature"
	// CodeIssuer: the Issuer is not the broker.
	CodeIssuer Code = "issuer"
	// CodeDestination: the Response's Destination is not our ACS URL.
	CodeDestination Code = "destination"
	// CodeRecipient: no bearer SubjectConfirmation names our ACS URL and
	// this request.
	CodeRecipient Code = "recipient"
	// CodeAudience: the AudienceRestriction is missing or does not name us.
	CodeAudience Code = "audience"
	// CodeExpired: a time condition failed (expired, not yet valid, or
	// issued too long ago).
	CodeExpired Code = "expired"
	// CodeUnknownRequest: InResponseTo is missing, unknown, already
	// answered, or the RelayState does not belong to it.
	CodeUnknownRequest Code = "unknown_request"
	// CodeReplay: this assertion was accepted before.
	CodeReplay Code = "replay"
	// CodeLevelTooLow: the level of assurance is below the configured
	// minimum.
	CodeLevelTooLow Code = "level_too_low"
	// CodeServiceMismatch: ServiceID or ServiceUUID is not ours.
	CodeServiceMismatch Code = "service_mismatch"
	// CodeIdentity: the identifying attributes are missing, not encrypted
	// for us, or cannot be decrypted or read.
	CodeIdentity Code = "identity"
	// CodeCancelled: the person cancelled at the broker (Responder /
	// AuthnFailed).
	CodeCancelled Code = "cancelled"
	// CodeNoAuthorization: the person holds no machtiging for this service
	// (Responder / AuthnFailed with a StatusMessage about the missing
	// authorisation).
	CodeNoAuthorization Code = "no_authorization"
	// CodeRequestUnsupported: the broker answered RequestUnsupported.
	CodeRequestUnsupported Code = "request_unsupported"
	// CodeBrokerError: the broker answered with another non-success status.
	CodeBrokerError Code = "broker_error"
	// CodeBrokerUnavailable: the broker's artifact resolution service or
	// metadata could not be reached in time.
	CodeBrokerUnavailable Code = "broker_unavailable"
	// CodeInternal: a fault on our side (state store failure, recovered
	// panic).
	CodeInternal Code = "internal"
)

// Error is returned by [ServiceProvider.HandleResponse] and
// [ServiceProvider.StartLogin]. Code is for the person's page; Detail,
// Status and StatusMessage are for the operator's log only and may contain
// text chosen by the broker.
type Error struct {
	Code Code
	// Detail explains the failure for the log.
	Detail string
	// Status holds the broker's status codes, top level first, when the
	// broker answered with a non-success status.
	Status []string
	// StatusMessage is the broker's StatusMessage, if any.
	StatusMessage string
	// Request is the tracked request the answer belonged to, when it was
	// identified and taken (so the caller can offer to try again).
	Request *TrackedRequest
	// Err is the underlying error, if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	msg := "eherkenning: " + string(e.Code)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the [Code] of err if it is or wraps an [*Error], and
// "" otherwise.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// ErrUnknownRequest is returned by [StateStore.TakeRequest] when no tracked
// request has the ID, including when it was taken before.
var ErrUnknownRequest = errors.New("eherkenning: unknown or already answered request")

func newErr(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

func wrapErr(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...), Err: err}
}
