// Package devpg runs a private PostgreSQL cluster for the embedded
// development stack, built with the machine's PostgreSQL server binaries.
package devpg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
)

// ErrNoBinaries means no PostgreSQL server binaries were found.
var ErrNoBinaries = errors.New(
	"PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: " +
		"install them (Debian/Ubuntu: apt-get install postgresql; " +
		"Fedora: dnf install postgresql-server; macOS: brew install postgresql@15), " +
		"put their directory on PATH or set POSTGRES_BIN_DIR, " +
		"or point DATABASE_URL at an existing server")

// Cluster is a private PostgreSQL cluster in a directory.
type Cluster struct {
	Dir      string // data directory
	Port     int
	Database string
	BinDir   string // empty means search
	Log      *slog.Logger

	runAs string // "postgres" when we are root, since postgres refuses root
}

// URL is the connection string of the cluster's database.
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, c.Database)
}

// Start creates the cluster when missing, starts the server and creates the
// database. It is a no-op for a server this cluster already runs.
func (c *Cluster) Start(ctx context.Context) error {
	bin, err := findBinDir(c.BinDir)
	if err != nil {
		return err
	}
	c.BinDir = bin

	if os.Geteuid() == 0 {
		c.runAs = "postgres"
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return fmt.Errorf("resolving data dir: %w", err)
	}
	c.Dir = dir

	if err := c.initdb(ctx); err != nil {
		return err
	}
	if err := c.startServer(ctx); err != nil {
		return err
	}

	return c.createDatabase(ctx)
}

// Stop shuts the server down with a fast shutdown.
func (c *Cluster) Stop(ctx context.Context) error {
	if !c.ready(ctx) {
		return nil
	}
	out, err := c.command(ctx, "pg_ctl", "stop", "-D", c.pgdata(), "-m", "fast", "-w").
		CombinedOutput()
	if err != nil {
		return fmt.Errorf("stopping postgres: %w: %s", err, out)
	}
	return nil
}

func (c *Cluster) pgdata() string { return filepath.Join(c.Dir, "pgdata") }

func (c *Cluster) initdb(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.pgdata(), "PG_VERSION")); err == nil {
		return nil
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", c.Dir, err)
	}
	if err := c.chown(c.Dir); err != nil {
		return err
	}

	c.Log.Info("creating postgres cluster", slog.String("dir", c.pgdata()))
	cmd := c.command(ctx, "initdb", "-D", c.pgdata(), "-U", "postgres",
		"--auth=trust", "--encoding=UTF8", "--no-instructions")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("running initdb: %w: %s", err, out)
	}

	return nil
}

func (c *Cluster) startServer(ctx context.Context) error {
	if c.ready(ctx) {
		return nil
	}
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c max_connections=200",
		c.Port, c.Dir)
	logFile := filepath.Join(c.Dir, "postgres.log")
	cmd := c.command(ctx, "pg_ctl", "start", "-D", c.pgdata(), "-l", logFile, "-o", opts,
		"-w", "-t", "60")
	// Its own process group keeps the terminal's Ctrl-C away from the
	// server, so services stop before the database they write to.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if out, err := cmd.CombinedOutput(); err != nil {
		tail, _ := os.ReadFile(logFile)
		return fmt.Errorf("starting postgres: %w: %s\n%s", err, out, lastLines(string(tail), 20))
	}
	c.Log.Info("postgres started", slog.Int("port", c.Port))

	return nil
}

func (c *Cluster) ready(ctx context.Context) bool {
	return c.command(ctx, "pg_isready", "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port)).
		Run() == nil
}

func (c *Cluster) createDatabase(ctx context.Context) error {
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.Port)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connecting to postgres: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	var exists bool
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`,
		c.Database).Scan(&exists)
	if err != nil {
		return fmt.Errorf("looking up database: %w", err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{c.Database}.Sanitize()); err != nil {
		return fmt.Errorf("creating database %s: %w", c.Database, err)
	}

	return nil
}

// command runs a PostgreSQL binary, as the postgres user when we are root.
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	path := filepath.Join(c.BinDir, name)
	if c.runAs == "" {
		return exec.CommandContext(ctx, path, args...)
	}
	return exec.CommandContext(ctx, "runuser", append([]string{"-u", c.runAs, "--", path}, args...)...)
}

func (c *Cluster) chown(dir string) error {
	if c.runAs == "" {
		return nil
	}
	u, err := user.Lookup(c.runAs)
	if err != nil {
		return fmt.Errorf("running as root needs a %q user: %w", c.runAs, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("handing %s to %s: %w", dir, c.runAs, err)
	}
	// The postgres user must be able to reach the directory through its
	// parents; a checkout under /root is not traversable by default.
	for p := filepath.Dir(dir); p != "/"; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("checking %s: %w", p, err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("the %s user cannot reach %s (no search permission on %s): "+
				"set COSTPLANE_DATA_DIR to a directory it can reach, e.g. /var/tmp/costplane",
				c.runAs, dir, p)
		}
	}

	return nil
}

// findBinDir finds a directory holding initdb, pg_ctl and postgres.
func findBinDir(explicit string) (string, error) {
	var candidates []string
	if explicit != "" {
		candidates = append(candidates, explicit)
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		candidates = append(candidates, filepath.Dir(p))
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	globbed, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(globbed))) // newest major first
	candidates = append(candidates, globbed...)
	candidates = append(candidates, "/usr/local/pgsql/bin", "/opt/homebrew/bin", "/usr/local/bin")

	for _, dir := range candidates {
		if hasServerBinaries(dir) {
			return dir, nil
		}
	}
	return "", ErrNoBinaries
}

func hasServerBinaries(dir string) bool {
	for _, b := range []string{"initdb", "pg_ctl", "postgres", "pg_isready"} {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() {
			return false
		}
	}
	return true
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
