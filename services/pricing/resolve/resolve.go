// Package resolve turns the model spellings sources send into one canonical
// (provider, model) of the price catalog, and recovers the inference
// profile and region when the id carries them (Bedrock profile ids and
// ARNs, Vertex resource paths).
//
// Spellings handled, in the order tried:
//   - case and surrounding whitespace are ignored everywhere;
//   - an Azure deployment name, through the tenant's deployment table;
//   - the id as is, at the given provider (or, without a provider, among
//     first-party providers);
//   - Bedrock ARNs (foundation-model/, inference-profile/) and Vertex
//     resource paths (projects/.../locations/L/publishers/P/models/M);
//   - a "provider/" prefix (openai/gpt-4o, anthropic/claude-..., LiteLLM's
//     bedrock/..., vertex_ai/..., azure/<deployment>);
//   - Bedrock geography prefixes (us., eu., apac., jp., au., ca., us-gov.,
//     global.), vendor prefixes (anthropic., meta., ...) and version
//     suffixes (-v1:0);
//   - version suffixes: Vertex "@20250514", dated snapshots
//     (-2024-08-06, -20250514), "-latest", Vertex "-001".
//
// A dated snapshot priced differently from its family is its own catalog
// model, and the exact id is always tried before any suffix is stripped, so
// gpt-4o-2024-05-13 keeps its own price.
package resolve

import (
	"errors"
	"fmt"
	"strings"

	"github.com/costplane/costplane/services/pricing/catalog"
)

// Inference profiles the resolver can infer from an id.
const (
	ProfileGlobal      = "global"
	ProfileCrossRegion = "cross-region"
	ProfileInRegion    = "in-region"
	ProfileRegional    = "regional"
	ProfileMultiRegion = "multi-region"
)

// Provider names with special id syntax.
const (
	Bedrock = "aws.bedrock"
	Vertex  = "gcp.vertex_ai"
	Azure   = "azure.ai.openai"
)

// ErrUnknownModel is returned when no catalog model matches an id. The
// wrapped message names the id and the provider tried.
var ErrUnknownModel = errors.New("unknown model")

// Result is a resolved model.
type Result struct {
	Provider string
	Model    string
	// Profile and Region are what the id itself says; empty when it says
	// nothing. Values set on the event take precedence.
	Profile string
	Region  string
}

// Deployments maps a tenant's Azure deployment names to catalog model ids
// (e.g. "prod-chat" -> "gpt-4o"). Keys are matched case-insensitively.
type Deployments map[string]string

// Resolver resolves ids against one catalog. It is immutable and safe for
// concurrent use.
type Resolver struct {
	providers   map[string]string            // any spelling -> canonical provider
	byProvider  map[string]map[string]string // provider -> id -> model
	unqualified map[string][2]string         // id -> (provider, model)
}

// New indexes a catalog's names and aliases.
func New(cat *catalog.Catalog) *Resolver {
	r := &Resolver{
		providers:   map[string]string{},
		byProvider:  map[string]map[string]string{},
		unqualified: map[string][2]string{},
	}
	for _, p := range cat.Providers() {
		r.providers[catalog.NormalizeID(p.Name)] = p.Name
		for _, a := range p.Aliases {
			r.providers[catalog.NormalizeID(a)] = p.Name
		}
		ids := map[string]string{}
		for _, m := range p.Models {
			for _, id := range append([]string{m.Name}, m.Aliases...) {
				key := catalog.NormalizeID(id)
				ids[key] = m.Name
				if p.FirstParty {
					r.unqualified[key] = [2]string{p.Name, m.Name}
				}
			}
		}
		r.byProvider[p.Name] = ids
	}
	return r
}

// CanonicalProvider maps a provider spelling to its catalog name, or
// returns "" when the catalog does not know it.
func (r *Resolver) CanonicalProvider(provider string) string {
	return r.providers[catalog.NormalizeID(provider)]
}

// Resolve finds the catalog model for a provider and model id. An unknown
// or empty provider lets the id decide (a Bedrock ARN, a provider/ prefix)
// and otherwise searches first-party providers.
func (r *Resolver) Resolve(provider, model string, deployments Deployments) (Result, error) {
	id := catalog.NormalizeID(model)
	if id == "" {
		return Result{}, fmt.Errorf("%w: empty model id", ErrUnknownModel)
	}
	res := Result{Provider: r.CanonicalProvider(provider)}

	if res.Provider == Azure || res.Provider == "" {
		if target, ok := lookupDeployment(deployments, id); ok {
			res.Provider = Azure
			id = target
		}
	}
	if m, ok := r.lookup(res.Provider, id); ok {
		res.Model = m
		if res.Provider == Bedrock && looksLikeBedrock(id) {
			parseBedrockProfile(&res, id)
		}
		return r.withProvider(res, id), nil
	}

	id = r.parseResourceID(&res, id)
	id = r.stripProviderPrefix(&res, id, deployments)
	if res.Provider == Bedrock || (res.Provider == "" && looksLikeBedrock(id)) {
		res.Provider = Bedrock
		id = parseBedrockProfile(&res, id)
	}

	for _, cand := range candidates(res.Provider, id) {
		if m, ok := r.lookup(res.Provider, cand); ok {
			res.Model = m
			return r.withProvider(res, cand), nil
		}
	}
	where := res.Provider
	if where == "" {
		where = "any first-party provider"
		if provider != "" {
			where = fmt.Sprintf("unknown provider %q", provider)
		}
	}
	return Result{}, fmt.Errorf("%w: %q at %s", ErrUnknownModel, model, where)
}

// lookup finds an id at one provider, or among first-party providers when
// provider is empty.
func (r *Resolver) lookup(provider, id string) (string, bool) {
	if provider != "" {
		m, ok := r.byProvider[provider][id]
		return m, ok
	}
	pm, ok := r.unqualified[id]
	return pm[1], ok
}

// withProvider fills in the provider of an unqualified hit.
func (r *Resolver) withProvider(res Result, id string) Result {
	if res.Provider == "" {
		res.Provider = r.unqualified[id][0]
	}
	return res
}

func lookupDeployment(deployments Deployments, id string) (string, bool) {
	if len(deployments) == 0 {
		return "", false
	}
	if t, ok := deployments[id]; ok {
		return catalog.NormalizeID(t), true
	}
	for name, t := range deployments {
		if catalog.NormalizeID(name) == id {
			return catalog.NormalizeID(t), true
		}
	}
	return "", false
}

// parseResourceID handles Bedrock ARNs and Vertex / Gemini resource paths,
// recording the provider, region and profile they imply.
func (r *Resolver) parseResourceID(res *Result, id string) string {
	if strings.HasPrefix(id, "arn:") {
		// arn:aws:bedrock:REGION:ACCOUNT:(foundation-model|inference-profile)/ID
		parts := strings.SplitN(id, ":", 6)
		if len(parts) == 6 && parts[2] == "bedrock" {
			res.Provider = Bedrock
			res.Region = parts[3]
			kind, rest, _ := strings.Cut(parts[5], "/")
			if kind == "foundation-model" {
				res.Profile = ProfileInRegion
			}
			return rest
		}
		return id
	}
	if i := strings.Index(id, "publishers/"); i >= 0 && strings.Contains(id, "/models/") {
		res.Provider = Vertex
		if loc := segmentAfter(id, "locations/"); loc != "" {
			setVertexLocation(res, loc)
		}
		return id[strings.LastIndex(id, "/models/")+len("/models/"):]
	}
	if strings.HasPrefix(id, "models/") {
		if res.Provider == "" {
			res.Provider = r.providers["gcp.gemini"]
		}
		return strings.TrimPrefix(id, "models/")
	}
	return id
}

func segmentAfter(s, key string) string {
	i := strings.Index(s, key)
	if i < 0 {
		return ""
	}
	seg, _, _ := strings.Cut(s[i+len(key):], "/")
	return seg
}

func setVertexLocation(res *Result, loc string) {
	switch loc {
	case "global":
		res.Profile = ProfileGlobal
	case "us", "eu":
		res.Profile = ProfileMultiRegion
		res.Region = loc
	default:
		res.Profile = ProfileRegional
		res.Region = loc
	}
}

// stripProviderPrefix handles "provider/model" ids. The given provider
// wins over the prefix when both are known and differ.
func (r *Resolver) stripProviderPrefix(res *Result, id string, deployments Deployments) string {
	prefix, rest, ok := strings.Cut(id, "/")
	if !ok {
		return id
	}
	p, known := r.providers[prefix]
	if !known {
		return id
	}
	if res.Provider == "" {
		res.Provider = p
	}
	if res.Provider == Azure {
		if target, ok := lookupDeployment(deployments, rest); ok {
			return target
		}
	}
	return rest
}

var bedrockGeos = map[string]bool{
	"us": true, "eu": true, "apac": true, "jp": true, "au": true,
	"ca": true, "us-gov": true, "global": true,
}

var bedrockVendors = []string{
	"anthropic.", "meta.", "amazon.", "mistral.", "cohere.", "ai21.",
	"deepseek.", "openai.", "qwen.", "writer.",
}

func looksLikeBedrock(id string) bool {
	if geo, rest, ok := strings.Cut(id, "."); ok && bedrockGeos[geo] {
		id = rest
	}
	for _, v := range bedrockVendors {
		if strings.HasPrefix(id, v) {
			return true
		}
	}
	return false
}

// parseBedrockProfile strips a geography prefix and records the profile it
// means: global. is the global profile, any other geography a
// cross-region (geographic) profile, and no prefix an in-region id.
func parseBedrockProfile(res *Result, id string) string {
	geo, rest, ok := strings.Cut(id, ".")
	if ok && bedrockGeos[geo] {
		if geo == "global" {
			res.Profile = ProfileGlobal
		} else {
			res.Profile = ProfileCrossRegion
		}
		return rest
	}
	if res.Profile == "" {
		res.Profile = ProfileInRegion
	}
	return id
}

// candidates lists the spellings to try after the exact id, most specific
// first. It allocates only for ids that missed the exact lookup.
func candidates(provider, id string) []string {
	out := []string{id}
	add := func(s string) {
		if s != "" && s != out[len(out)-1] {
			out = append(out, s)
		}
	}
	base := id
	if at := strings.IndexByte(base, '@'); at > 0 {
		base = base[:at]
		add(base)
	}
	if provider == Bedrock {
		for _, v := range bedrockVendors {
			if strings.HasPrefix(base, v) {
				base = strings.TrimPrefix(base, v)
				add(base)
				break
			}
		}
		base = trimBedrockVersion(base)
		add(base)
	}
	base = trimSnapshot(base)
	add(base)
	return out
}

// trimBedrockVersion removes a version ending: "-v1:0", "-v1", or the
// "-1:0" of ids such as openai.gpt-oss-120b-1:0. A bare "-N" is kept, since
// it is part of names like claude-opus-4-5.
func trimBedrockVersion(s string) string {
	colon := false
	if i := strings.LastIndexByte(s, ':'); i > 0 && allDigits(s[i+1:]) {
		s, colon = s[:i], true
	}
	if i := strings.LastIndex(s, "-v"); i > 0 && allDigits(s[i+2:]) {
		return s[:i]
	}
	if i := strings.LastIndexByte(s, '-'); colon && i > 0 && allDigits(s[i+1:]) {
		return s[:i]
	}
	return s
}

// trimSnapshot removes one trailing version marker: -latest, an ISO date
// (-2024-08-06), a compact date (-20250514) or a three-digit revision
// (-001). Four-digit suffixes (-2411, -0613) are not stripped: providers
// use them for distinct models, which the catalog lists as aliases.
func trimSnapshot(s string) string {
	if t, ok := strings.CutSuffix(s, "-latest"); ok {
		return t
	}
	n := len(s)
	switch {
	case n > 11 && s[n-11] == '-' && s[n-6] == '-' && s[n-3] == '-' &&
		allDigits(s[n-10:n-6]) && allDigits(s[n-5:n-3]) && allDigits(s[n-2:]):
		return s[:n-11]
	case n > 9 && s[n-9] == '-' && allDigits(s[n-8:]):
		return s[:n-9]
	case n > 4 && s[n-4] == '-' && allDigits(s[n-3:]):
		return s[:n-4]
	}
	return s
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
