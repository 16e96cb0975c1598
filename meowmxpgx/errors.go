package meowmxpgx

import (
	"errors"
	"fmt"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/meowmx/meowmx/meowmxdriver"
)

// stage is what a failing call was doing, which decides what its error
// means for the data.
type stage int

const (
	// onRead: a read, or a statement in a transaction that the driver
	// does not commit (the caller's). Nothing was at stake.
	onRead stage = iota
	// onWrite: a statement of the driver's own transaction before its
	// commit. Whatever happened, the transaction did not commit.
	onWrite
	// onCommit: the commit of the driver's own transaction, or an
	// autocommit statement. When the connection broke after it was sent,
	// the transaction may have committed.
	onCommit
)

// interpretError maps an error of pgx to meowmxdriver's: no rows to
// ErrNotFound, a refused value to ErrInvalidInput, a missing table to
// ErrNotMigrated, a unique violation to ErrDuplicate, and a commit whose
// answer was lost to ErrCommitUnknown. It is the driver's one mapping.
func interpretError(err error, st stage) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return meowmxdriver.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && !(st == onCommit && fatal(pgErr)) {
		// The server answered: the statement (and the transaction it was
		// in) failed, and nothing of it committed.
		switch pgErr.Code {
		case pgerrcode.InvalidTextRepresentation, pgerrcode.StringDataRightTruncationDataException,
			pgerrcode.CharacterNotInRepertoire, pgerrcode.UntranslatableCharacter, pgerrcode.ProgramLimitExceeded:
			return fmt.Errorf("%w: %w", meowmxdriver.ErrInvalidInput, err)
		case pgerrcode.UndefinedTable:
			return fmt.Errorf("%w: %w", meowmxdriver.ErrNotMigrated, err)
		case pgerrcode.UniqueViolation:
			return fmt.Errorf("%w: %w", meowmxdriver.ErrDuplicate, err)
		}
		return fmt.Errorf("meowmxpgx: %w", err)
	}
	if st == onCommit && !pgconn.SafeToRetry(err) {
		// Sent, and no answer: it may have committed.
		return fmt.Errorf("%w: meowmxpgx: %w", meowmxdriver.ErrCommitUnknown, err)
	}
	return fmt.Errorf("meowmxpgx: %w", err)
}

// sqlState returns the SQLSTATE of a server's error, "" for any other.
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// fatal tells whether the server ended the session with the error.
func fatal(pgErr *pgconn.PgError) bool {
	switch pgErr.SeverityUnlocalized {
	case "FATAL", "PANIC":
		return true
	case "":
		return pgErr.Severity == "FATAL" || pgErr.Severity == "PANIC"
	}
	return false
}

// acquireError is a failure to get a connection from the pool: nothing
// was sent.
type acquireError struct{ err error }

func (e *acquireError) Error() string     { return e.err.Error() }
func (e *acquireError) Unwrap() error     { return e.err }
func (e *acquireError) SafeToRetry() bool { return true }
