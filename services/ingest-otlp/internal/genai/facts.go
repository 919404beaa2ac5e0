package genai

import (
	"strconv"

	"github.com/costplane/costplane/libs/usage"
	"github.com/costplane/costplane/services/ingest-otlp/internal/otlp"
)

// A role is what an attribute means to the mapping. One pass over a span's
// attributes looks each key up once and files its value by role.
type roleKind uint8

const (
	roleString roleKind = iota + 1
	roleToken
	roleSession
	roleCustomer
	roleUser
	roleLabel
)

type role struct {
	kind roleKind
	// idx is the string or token slot, the priority of a session,
	// customer or user attribute (lower wins), or the label rule.
	idx uint8
}

// String slots.
const (
	strOperation = iota
	strProvider
	strSystem
	strRequestModel
	strResponseModel
	strResponseID
	strAgentID
	strAgentName
	strAgentVersion
	strToolName
	strTierResponse
	strTierRequest
	strErrorType
	strOIKind
	strOIModel
	strOIProvider
	strOISystem
	strOIAgent
	strOITool
	strApp
	strEnv
	strEnvOld
	numStrings
)

// Token slots.
const (
	tokInput = iota
	tokOutput
	tokPrompt
	tokCompletion
	tokCacheRead
	tokCacheCreation
	tokReasoning
	tokTotal
	tokOIPrompt
	tokOICompletion
	tokOITotal
	tokOICacheRead
	tokOICacheWrite
	tokOIPromptAudio
	tokOIReasoning
	tokOICompletionAudio
	numTokens
)

const (
	otelTokenMask = 1<<tokInput | 1<<tokOutput | 1<<tokPrompt | 1<<tokCompletion |
		1<<tokCacheRead | 1<<tokCacheCreation | 1<<tokReasoning
	oiTokenMask = 1<<tokOIPrompt | 1<<tokOICompletion | 1<<tokOICacheRead |
		1<<tokOICacheWrite | 1<<tokOIPromptAudio | 1<<tokOIReasoning | 1<<tokOICompletionAudio
)

var spanStringAttrs = map[string]int{
	AttrOperationName:         strOperation,
	AttrProviderName:          strProvider,
	AttrSystem:                strSystem,
	AttrRequestModel:          strRequestModel,
	AttrResponseModel:         strResponseModel,
	AttrResponseID:            strResponseID,
	AttrAgentID:               strAgentID,
	AttrAgentName:             strAgentName,
	AttrAgentVersion:          strAgentVersion,
	AttrToolName:              strToolName,
	AttrOpenAIResponseTier:    strTierResponse,
	AttrOldOpenAIResponseTier: strTierResponse,
	AttrOpenAIRequestTier:     strTierRequest,
	AttrOldOpenAIRequestTier:  strTierRequest,
	AttrErrorType:             strErrorType,
	AttrOISpanKind:            strOIKind,
	AttrOIModel:               strOIModel,
	AttrOIProvider:            strOIProvider,
	AttrOISystem:              strOISystem,
	AttrOIAgent:               strOIAgent,
	AttrOIToolName:            strOITool,
}

var resourceStringAttrs = map[string]int{
	AttrServiceName:           strApp,
	AttrDeploymentEnvironment: strEnv,
	AttrDeploymentEnvOld:      strEnvOld,
}

var tokenAttrs = map[string]int{
	AttrInputTokens:         tokInput,
	AttrOutputTokens:        tokOutput,
	AttrPromptTokens:        tokPrompt,
	AttrCompletionTokens:    tokCompletion,
	AttrCacheReadTokens:     tokCacheRead,
	AttrCacheCreationTokens: tokCacheCreation,
	AttrReasoningTokens:     tokReasoning,
	AttrTotalTokens:         tokTotal,
	AttrOIPromptTokens:      tokOIPrompt,
	AttrOICompletionTokens:  tokOICompletion,
	AttrOITotalTokens:       tokOITotal,
	AttrOICacheRead:         tokOICacheRead,
	AttrOICacheWrite:        tokOICacheWrite,
	AttrOIPromptAudio:       tokOIPromptAudio,
	AttrOIReasoning:         tokOIReasoning,
	AttrOICompletionAudio:   tokOICompletionAudio,
}

// roleTable maps attribute keys to their roles. A key can have several,
// for example session.id as the session and as a label.
type roleTable map[string][]role

func newRoleTable(strs map[string]int, withTokens bool, cfg Config) roleTable {
	t := roleTable{}
	for k, i := range strs {
		t.add(k, role{kind: roleString, idx: uint8(i)})
	}
	if withTokens {
		for k, i := range tokenAttrs {
			t.add(k, role{kind: roleToken, idx: uint8(i)})
		}
		for i, k := range cfg.SessionAttrs {
			t.add(k, role{kind: roleSession, idx: uint8(min(i, 255))})
		}
	}
	for i, k := range cfg.CustomerAttrs {
		t.add(k, role{kind: roleCustomer, idx: uint8(min(i, 255))})
	}
	for i, k := range cfg.UserAttrs {
		t.add(k, role{kind: roleUser, idx: uint8(min(i, 255))})
	}
	for i, r := range cfg.Labels {
		t.add(r.Attr, role{kind: roleLabel, idx: uint8(i)})
	}
	return t
}

func (t roleTable) add(key string, r role) {
	t[key] = append(t[key], r)
}

// facts is what one pass over a span's (or a resource's) attributes found.
type facts struct {
	str      [numStrings]string
	tok      [numTokens]int64
	tokSet   uint32
	badToken string
	// The best (lowest priority number) match of each configured list.
	session, customer, user          string
	sessionPri, customerPri, userPri int
	labels                           []string
}

func (f *facts) reset(labels int) {
	l := f.labels
	*f = facts{sessionPri: 1 << 30, customerPri: 1 << 30, userPri: 1 << 30}
	if cap(l) >= labels {
		l = l[:labels]
		clear(l)
	} else {
		l = make([]string, labels)
	}
	f.labels = l
}

// collect files attrs into f by role.
func (f *facts) collect(t roleTable, attrs []otlp.KeyValue) {
	for i := range attrs {
		roles, ok := t[attrs[i].Key]
		if !ok {
			continue
		}
		for _, r := range roles {
			f.file(r, attrs[i].Key, attrs[i].Value)
		}
	}
}

func (f *facts) file(r role, key string, v otlp.Value) {
	switch r.kind {
	case roleString:
		if v.Kind == otlp.KindString {
			f.str[r.idx] = v.Str
		}
	case roleToken:
		f.fileToken(r.idx, key, v)
	case roleSession:
		pick(&f.session, &f.sessionPri, int(r.idx), v)
	case roleCustomer:
		pick(&f.customer, &f.customerPri, int(r.idx), v)
	case roleUser:
		pick(&f.user, &f.userPri, int(r.idx), v)
	case roleLabel:
		if s, ok := valueString(v); ok && f.labels[r.idx] == "" {
			f.labels[r.idx] = s
		}
	}
}

func (f *facts) fileToken(slot uint8, key string, v otlp.Value) {
	n, ok := v.AsInt64()
	if !ok || n < 0 || n > usage.MaxAmount {
		if f.badToken == "" {
			f.badToken = key
		}
		return
	}
	f.tok[slot] = n
	f.tokSet |= 1 << slot
}

// pick keeps v in *dst when its priority beats the current one.
func pick(dst *string, pri *int, p int, v otlp.Value) {
	if p >= *pri {
		return
	}
	if s, ok := valueString(v); ok && s != "" {
		*dst, *pri = s, p
	}
}

// valueString renders scalar attribute values; ids are sometimes sent as
// numbers.
func valueString(v otlp.Value) (string, bool) {
	switch v.Kind {
	case otlp.KindString:
		return v.Str, true
	case otlp.KindInt:
		return strconv.FormatInt(v.Int, 10), true
	case otlp.KindBool:
		return strconv.FormatBool(v.Bool), true
	case otlp.KindDouble:
		return strconv.FormatFloat(v.Double, 'g', -1, 64), true
	default:
		return "", false
	}
}

func (f *facts) has(slot int) bool {
	return f.tokSet&(1<<slot) != 0
}

func (f *facts) hasTokens() bool {
	return f.tokSet&(otelTokenMask|oiTokenMask) != 0
}

// tokens returns the span's token report, preferring the GenAI attributes
// when a span carries both conventions, and the total reported beside it.
func (f *facts) tokens() (usage.Tokens, int64) {
	if f.tokSet&otelTokenMask != 0 {
		return f.otelTokens(), f.tok[tokTotal]
	}
	return usage.Tokens{
		Input:        f.tok[tokOIPrompt],
		Output:       f.tok[tokOICompletion],
		CacheRead:    f.tok[tokOICacheRead],
		CacheWrite5m: f.tok[tokOICacheWrite],
		Reasoning:    f.tok[tokOIReasoning],
		InputAudio:   f.tok[tokOIPromptAudio],
		OutputAudio:  f.tok[tokOICompletionAudio],
	}, f.tok[tokOITotal]
}

func (f *facts) otelTokens() usage.Tokens {
	in, out := f.tok[tokInput], f.tok[tokOutput]
	if !f.has(tokInput) {
		in = f.tok[tokPrompt]
	}
	if !f.has(tokOutput) {
		out = f.tok[tokCompletion]
	}
	return usage.Tokens{
		Input:     in,
		Output:    out,
		CacheRead: f.tok[tokCacheRead],
		// The conventions do not say how long a cache entry lives;
		// five minutes is the default of every provider that bills it.
		CacheWrite5m: f.tok[tokCacheCreation],
		Reasoning:    f.tok[tokReasoning],
	}
}
