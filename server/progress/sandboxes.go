package progress

import (
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// sandboxes holds the sandboxes a flowlab has open, keyed by instance and
// id, so that a flowlab that was killed, and so never tore them down, can
// delete what they left on the brokers when it starts again.
var sandboxes = []byte("sandboxes")

// sandboxKey keeps instances apart: an id is unique only within its
// instance's names. Instance names and lab ids hold no NUL.
func sandboxKey(instance, id string) []byte { return []byte(instance + "\x00" + id) }

// SandboxOpened records that sandbox id of instance is open.
func (s *Store) SandboxOpened(instance, id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(sandboxes).Put(sandboxKey(instance, id), nil)
	})
}

// SandboxGone forgets sandbox id of instance: nothing of it is left.
func (s *Store) SandboxGone(instance, id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(sandboxes).Delete(sandboxKey(instance, id))
	})
}

// Sandboxes are the ids of instance's sandboxes recorded open, sorted.
func (s *Store) Sandboxes(instance string) ([]string, error) {
	var ids []string
	prefix := sandboxKey(instance, "")
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(sandboxes).Cursor()
		for k, _ := c.Seek(prefix); k != nil && len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix); k, _ = c.Next() {
			ids = append(ids, string(k[len(prefix):]))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open sandboxes in %s: %w", s.path, err)
	}
	slices.Sort(ids)
	return ids, nil
}
