package main

import (
	"os"
	"os/exec"
	"syscall"
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

// killNodeGroup kills the script and the Erlang VM it started.
func killNodeGroup(p *os.Process) { syscall.Kill(-p.Pid, syscall.SIGKILL) }
