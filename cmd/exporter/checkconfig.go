package main

import (
	"fmt"
	"io"

	"github.com/crowsnest/crowsnest/internal/config"
)

// checkConfig validates each configuration file as --config.file loads it
// and reports each on its own line: what it holds, or the error with its
// file, line and field. It returns the exit code: 0 when every file is
// valid, 1 otherwise.
func checkConfig(files []string, stdout, stderr io.Writer) int {
	code := 0
	for _, f := range files {
		c, err := config.Load(f)
		if err != nil {
			fmt.Fprintf(stderr, "crowsnest: %v\n", err)
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "%s: valid: %s\n", f, c.Summary())
	}
	return code
}
