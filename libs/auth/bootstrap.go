package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/costplane/costplane/libs/pg"
)

const (
	lockBootstrap = `SELECT pg_advisory_xact_lock(hashtext('costplane.auth.bootstrap'))`

	ensureOperator = `
INSERT INTO auth.tenants (tenant_id, name, operator) VALUES ($1, $1, true)
ON CONFLICT (tenant_id) DO NOTHING`

	selectOperatorFlag = `SELECT operator FROM auth.tenants WHERE tenant_id = $1`

	selectBootstrapKey = `
SELECT tenant_id, secret_hash, revoke_time IS NOT NULL FROM auth.api_keys WHERE key_id = $1`

	countActiveKeys = `
SELECT count(*) FROM auth.api_keys WHERE tenant_id = $1 AND revoke_time IS NULL`
)

// Bootstrap prepares a development installation: it makes sure the
// operator tenant tenantID exists and that it has a usable key with every
// scope.
//
// With devKey set (a token in the cp_<id>_<secret> form, for a fixed key in
// local setups), that key is created unless present, and devKey is
// returned. Without it, a new key is created only when the tenant has no
// active key, and its token is returned; otherwise the result is empty,
// since existing secrets cannot be shown again. Concurrent calls are safe.
func (s *Store) Bootstrap(ctx context.Context, tenantID, devKey string) (string, error) {
	var token string
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := ensureOperatorTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		var err error
		if devKey != "" {
			token, err = ensureDevKey(ctx, tx, tenantID, devKey)
		} else {
			token, err = ensureSomeKey(ctx, tx, tenantID)
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("bootstrapping tenant %s: %w", tenantID, err)
	}
	return token, nil
}

func ensureOperatorTenant(ctx context.Context, tx pgx.Tx, tenantID string) error {
	if _, err := tx.Exec(ctx, lockBootstrap); err != nil {
		return fmt.Errorf("locking: %w", err)
	}
	if _, err := tx.Exec(ctx, ensureOperator, tenantID); err != nil {
		return fmt.Errorf("creating operator tenant: %w", err)
	}

	var operator bool
	if err := tx.QueryRow(ctx, selectOperatorFlag, tenantID).Scan(&operator); err != nil {
		return fmt.Errorf("reading tenant: %w", err)
	}
	if !operator {
		return fmt.Errorf("tenant %s exists and is not an operator tenant", tenantID)
	}
	return nil
}

func ensureDevKey(ctx context.Context, tx pgx.Tx, tenantID, devKey string) (string, error) {
	keyID, secret, err := parseToken(devKey)
	if err != nil {
		return "", errors.New("the development key is not of the form cp_<id>_<secret> " +
			"(lower-case letters and digits, a secret of at least 32)")
	}

	var (
		owner   string
		hash    []byte
		revoked bool
	)
	err = tx.QueryRow(ctx, selectBootstrapKey, keyID).Scan(&owner, &hash, &revoked)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		_, err = insertKeyRow(ctx, tx, tenantID, "development key", AllScopes, keyID, secret)
		return devKey, err
	case err != nil:
		return "", fmt.Errorf("reading development key: %w", err)
	case owner != tenantID || !secretMatches(secret, hash):
		return "", fmt.Errorf("key id %s is already taken by another key", keyID)
	case revoked:
		return "", fmt.Errorf("the development key %s has been revoked", keyID)
	}
	return devKey, nil
}

func ensureSomeKey(ctx context.Context, tx pgx.Tx, tenantID string) (string, error) {
	var active int
	if err := tx.QueryRow(ctx, countActiveKeys, tenantID).Scan(&active); err != nil {
		return "", fmt.Errorf("counting keys: %w", err)
	}
	if active > 0 {
		return "", nil
	}

	id, secret, err := newToken()
	if err != nil {
		return "", err
	}
	if _, err := insertKeyRow(ctx, tx, tenantID, "development key", AllScopes, id,
		secret); err != nil {
		return "", err
	}
	return formatToken(id, secret), nil
}
