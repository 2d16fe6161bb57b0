// Command infadapter is the InfAdapter CLI: run the local demo, simulate
// policies on traces, and use the parts (solve, forecast, profile, loadgen,
// serve-model) on their own. Each subcommand lives in its own file and only
// wires flags to packages under pkg/.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// errBadInput marks errors caused by the user's input (flags, files); they
// exit with code 2, everything else with 1.
var errBadInput = errors.New("bad input")

// badInput wraps err so that main exits with code 2.
func badInput(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", errBadInput, err)
}

var rootCmd = &cobra.Command{
	Use:   "infadapter",
	Short: "InfAdapter: accuracy-, cost- and latency-aware autoscaling for ML inference",
	Long: `InfAdapter serves a set of model variants (e.g. ResNet18..152) and every
interval picks which variants run, the CPU cores of each and each one's share
of the traffic, so that the P99 latency SLO holds while load-weighted accuracy
minus a cost penalty is as high as possible (Salmani et al., EuroMLSys '23).`,
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		msg := err.Error()
		if errors.Is(err, errBadInput) {
			// badInput joins two errors with %w, so errors.Unwrap returns
			// nil; strip the marker's text instead.
			msg = strings.TrimPrefix(msg, errBadInput.Error()+": ")
		}
		fmt.Fprintln(os.Stderr, "infadapter:", msg)
		if errors.Is(err, errBadInput) || isFlagError(err) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// isFlagError reports cobra/pflag parse errors, which are the user's too.
func isFlagError(err error) bool {
	var fe interface{ FlagError() }
	return errors.As(err, &fe)
}

func init() {
	rootCmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return badInput(err) })
}
