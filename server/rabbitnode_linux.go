package main

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// installCommand is the one command that installs rabbitmq-server here.
const installCommand = "sudo apt-get install rabbitmq-server"

// findRabbitServer is the rabbitmq-server script, "" when it is not
// installed. Debian's and RPM's scripts in /usr/lib/rabbitmq/bin come first:
// the /usr/sbin wrappers refuse anyone but root and rabbitmq, and switch root
// to rabbitmq.
func findRabbitServer() string {
	const packaged = "/usr/lib/rabbitmq/bin/rabbitmq-server"
	if _, err := os.Stat(packaged); err == nil {
		return packaged
	}
	p, _ := exec.LookPath("rabbitmq-server")
	return p
}

// nodeProcAttr puts the node in a process group of its own, so a terminal's
// Ctrl-C reaches flowlab alone and flowlab decides how the node stops; and
// the script gets SIGTERM (a clean stop) if flowlab dies without stopping it.
func nodeProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// killNodeGroup kills the script and the Erlang VM it started (vm, 0 when
// not known yet), and waits up to a second for the VM to be dead: one of a
// few hundred MiB takes a moment, and flowlab must not exit before it has.
func killNodeGroup(p *os.Process, vm int) {
	syscall.Kill(-p.Pid, syscall.SIGKILL)
	for deadline := time.Now().Add(time.Second); vm != 0 && running(vm) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
}

// running reports whether pid is a live process. A zombie is not: the VM,
// orphaned when its script is killed with it, waits there for init.
func running(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
	return !strings.HasPrefix(strings.TrimSpace(rest), "Z")
}
