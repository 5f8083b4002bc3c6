package main

import (
	"context"

	"github.com/reef-db/reef/shell"
)

func runShell(args []string) int {
	return shell.Main(context.Background(), args)
}
