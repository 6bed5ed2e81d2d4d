// Command gen writes the Helm chart and the Carvel package generated from
// deploy/render (make packages).
//
//	go run ./deploy/packaging/gen [--root DIR] [--check]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/t1route/t1route/deploy/packaging"
)

func main() {
	root := flag.String("root", ".", "repository root")
	check := flag.Bool("check", false, "write nothing; exit 1 listing the files that differ from what render gives now")
	flag.Parse()
	files, err := packaging.Generate()
	if err != nil {
		fmt.Fprintln(os.Stderr, "packages:", err)
		os.Exit(1)
	}
	if *check {
		diff, err := packaging.Diff(*root, files)
		if err != nil {
			fmt.Fprintln(os.Stderr, "packages:", err)
			os.Exit(1)
		}
		if len(diff) > 0 {
			fmt.Fprintln(os.Stderr, "packages: the chart and the package differ from deploy/render's output; run make packages:")
			for _, p := range diff {
				fmt.Fprintln(os.Stderr, "  "+p)
			}
			os.Exit(1)
		}
		fmt.Printf("packages: %d generated files current\n", len(files))
		return
	}
	if err := packaging.Write(*root, files); err != nil {
		fmt.Fprintln(os.Stderr, "packages:", err)
		os.Exit(1)
	}
	fmt.Printf("packages: wrote %d files into %s and %s\n", len(files), packaging.ChartDir, packaging.CarvelDir)
}
