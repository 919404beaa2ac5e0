// Package config loads a service's typed configuration from environment
// variables, with command-line flags overriding them and struct-tag
// defaults filling the rest.
//
// A field takes part when it has an env tag:
//
//	type Config struct {
//		Brokers []string      `env:"KAFKA_BROKERS" default:"" help:"..."`
//		Timeout time.Duration `env:"SHUTDOWN_TIMEOUT" default:"10s"`
//	}
//
// The flag name is the env name in lower case with dashes (kafka-brokers)
// unless a flag tag names it. Nested structs are walked, so services can
// embed shared blocks such as Kafka or PostgreSQL settings.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Validator is implemented by configs that check their own values.
type Validator interface {
	Validate() error
}

// Error names the setting that could not be read.
type Error struct {
	Setting string
	Value   string
	Reason  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("config: %s=%q: %s", e.Setting, e.Value, e.Reason)
}

type field struct {
	env, flag, def, help string
	v                    reflect.Value
}

// Load fills cfg (a pointer to a struct) from defaults, then lookupEnv,
// then args parsed as flags on a new flag set named name. lookupEnv is
// os.LookupEnv in production and a map in tests. When cfg implements
// Validator, Validate runs last.
func Load(name string, cfg any, args []string, lookupEnv func(string) (string, bool)) error {
	rv := reflect.ValueOf(cfg)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return errors.New("config: Load needs a pointer to a struct")
	}
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}

	var fields []field
	collect(rv.Elem(), &fields)

	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// Blocks embedded side by side may share a setting (METRICS_ADDR, say):
	// one flag then fills every field that names it.
	flagValues := make(map[string]*string, len(fields))
	for _, f := range fields {
		if _, dup := flagValues[f.flag]; dup {
			continue
		}
		usage := fmt.Sprintf("%s (env %s, default %q)", f.help, f.env, f.def)
		flagValues[f.flag] = fs.String(f.flag, "", usage)
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	for _, f := range fields {
		raw, setting := f.def, f.env+" (default)"
		if v, ok := lookupEnv(f.env); ok {
			raw, setting = v, f.env
		}
		if set[f.flag] {
			raw, setting = *flagValues[f.flag], "--"+f.flag
		}
		if err := assign(f.v, raw); err != nil {
			return &Error{Setting: setting, Value: raw, Reason: err.Error()}
		}
	}

	if v, ok := cfg.(Validator); ok {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}

	return nil
}

func collect(v reflect.Value, out *[]field) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		fv := v.Field(i)
		env, ok := sf.Tag.Lookup("env")
		if !ok {
			if fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeFor[time.Time]() {
				collect(fv, out)
			}
			continue
		}
		fl := sf.Tag.Get("flag")
		if fl == "" {
			fl = strings.ReplaceAll(strings.ToLower(env), "_", "-")
		}
		*out = append(*out, field{env: env, flag: fl, def: sf.Tag.Get("default"), help: sf.Tag.Get("help"), v: fv})
	}
}

var durationType = reflect.TypeFor[time.Duration]()

func assign(v reflect.Value, raw string) error {
	if v.Type() == durationType {
		if raw == "" {
			v.SetInt(0)
			return nil
		}
		d, err := time.ParseDuration(raw)
		if err != nil {
			return errors.New("not a duration (e.g. 500ms, 10s, 2m)")
		}
		v.SetInt(int64(d))
		return nil
	}

	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		if raw == "" {
			v.SetBool(false)
			return nil
		}
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return errors.New("not a boolean (true or false)")
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if raw == "" {
			v.SetInt(0)
			return nil
		}
		n, err := strconv.ParseInt(raw, 10, v.Type().Bits())
		if err != nil {
			return errors.New("not an integer in range")
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return errors.New("not a number")
		}
		v.SetFloat(f)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported list type %s", v.Type())
		}
		var items []string
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("unsupported setting type %s", v.Type())
	}
	return nil
}
