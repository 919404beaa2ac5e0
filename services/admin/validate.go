package admin

import (
	"fmt"
	"regexp"
	"unicode/utf8"

	adminv1 "github.com/costplane/costplane/proto/gen/go/costplane/admin/v1"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/auth"
)

const maxNameLen = 200

// tenantIDPattern matches the database's check on auth.tenants.
var tenantIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$`)

func validateTenantID(field, id string) error {
	switch {
	case id == "":
		return apierr.Invalid(field, "must not be empty")
	case !tenantIDPattern.MatchString(id):
		return apierr.Invalid(field, "must be 2-63 lower-case letters, digits and dashes, "+
			"starting and ending with a letter or digit")
	}
	return nil
}

func checkName(v *apierr.Violations, field, name string) {
	if utf8.RuneCountInString(name) > maxNameLen {
		v.Add(field, fmt.Sprintf("must not be longer than %d characters", maxNameLen))
	}
}

var scopeFromProto = map[adminv1.Scope]auth.Scope{
	adminv1.Scope_SCOPE_INGEST: auth.ScopeIngest,
	adminv1.Scope_SCOPE_READ:   auth.ScopeRead,
	adminv1.Scope_SCOPE_ADMIN:  auth.ScopeAdmin,
}

// checkScopes converts the requested scopes, dropping repeats, and records
// a violation for every one that is not a real scope.
func checkScopes(v *apierr.Violations, field string, in []adminv1.Scope) []auth.Scope {
	if len(in) == 0 {
		v.Add(field, "must name at least one scope")
		return nil
	}

	var out []auth.Scope
	seen := make(map[auth.Scope]bool)
	for i, s := range in {
		sc, ok := scopeFromProto[s]
		if !ok {
			v.Add(fmt.Sprintf("%s[%d]", field, i),
				"must be SCOPE_INGEST, SCOPE_READ or SCOPE_ADMIN")
			continue
		}
		if !seen[sc] {
			seen[sc] = true
			out = append(out, sc)
		}
	}
	return out
}
