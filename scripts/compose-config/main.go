// compose-config loads a Compose project with compose-go, the library `docker compose config` is
// built on (interpolation, required variables, the Compose JSON schema, override files, profiles,
// normalization), and prints the resolved project as JSON. It lets a machine without Docker check
// temporal-docker/ the way Docker Compose will read it; test/compose.test.ts runs it.
//
//	compose-config --dir temporal-docker --env-file vars.env [--profile p] docker-compose.yml [override.yml]
//
// Only the given env file and the process environment are read: never a `.env` beside the files.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

type list []string

func (l *list) String() string     { return fmt.Sprint(*l) }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	dir := flag.String("dir", ".", "the project folder (relative paths in the files resolve from it)")
	envFile := flag.String("env-file", "", "the variables file to interpolate with (required)")
	name := flag.String("project-name", "", "the project name (default: the files' `name:`)")
	var profiles list
	flag.Var(&profiles, "profile", "a profile to enable (repeatable)")
	flag.Parse()
	if *envFile == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: compose-config --dir DIR --env-file FILE [--profile P] FILE.yml...")
		os.Exit(2)
	}
	options, err := cli.NewProjectOptions(flag.Args(),
		cli.WithWorkingDirectory(*dir),
		cli.WithOsEnv,
		cli.WithEnvFiles(*envFile),
		cli.WithDotEnv,
		cli.WithProfiles(profiles),
		cli.WithName(*name),
	)
	if err != nil {
		fail(err)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	out, err := project.MarshalJSON()
	if err != nil {
		fail(err)
	}
	os.Stdout.Write(append(out, '\n'))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "compose-config:", err)
	os.Exit(1)
}
