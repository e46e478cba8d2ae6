//go:build !linux

package main

import (
	"os"
	"syscall"
)

// Private nodes are started on Linux only, where the node's life can be tied
// to flowlab's (a process group, a signal when flowlab dies). Elsewhere the
// page says how to get a broker, and the two functions below are never
// reached.
const installCommand = ""

func findRabbitServer() string { return "" }

func nodeProcAttr() *syscall.SysProcAttr { return nil }

func killNodeGroup(p *os.Process, _ int) { p.Kill() }
