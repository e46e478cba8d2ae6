package progress

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"flowlab/flow"
)

// Buckets of the classroom: classes by code, members by the hex SHA-256 of
// their token (the token itself is never kept), and flowlab's own settings.
var (
	classes = []byte("classes")
	members = []byte("class-members")
	meta    = []byte("meta")
)

var teachKey = []byte("teach-key")

// Class is one classroom: its walkthrough and where the instructor holds it.
type Class struct {
	Code    string    `json:"code"`
	Walk    string    `json:"walk"`
	Created time.Time `json:"created"`
	Step    int       `json:"step"`   // where "move everyone" put them
	Lock    int       `json:"lock"`   // learners may not go past it; -1: no lock
	Paused  bool      `json:"paused"` // load stopped in every sandbox
}

// Member is one learner of a class: their display name, their sandbox and
// what they did in the class's walkthrough, so that the board and a
// returning learner find it after a restart.
type Member struct {
	Class  string    `json:"class"`
	Name   string    `json:"name"`
	Seq    int       `json:"seq"` // join order within the class, from 1
	Joined time.Time `json:"joined"`
	Lab    string    `json:"lab"` // their sandbox now, or the last one
	Place
}

// Place is a member's place in the class's walk, as last seen.
type Place struct {
	Walk     string            `json:"walk"`
	Step     int               `json:"step"`
	Since    int64             `json:"since"` // unix ms the step was entered
	Done     []int             `json:"done"`
	Passed   []int             `json:"passed"`
	Assisted []int             `json:"assisted"`
	Answers  map[string]string `json:"answers"`
	Outcomes map[string]string `json:"outcomes,omitempty"` // predict step → the measured outcome, once judged
	Failed   *Failed           `json:"failed"`
}

// Failed is the last check a member's walk left "not yet", and why.
type Failed struct {
	Step  int    `json:"step"`
	Title string `json:"title"`
	Hint  string `json:"hint"`
}

// Limits on what classes may hold.
const (
	MaxClasses = 1000 // classes kept
	MaxMembers = 500  // learners in one class
)

// prepareClasses makes the classroom's buckets; called within prepare's
// transaction.
func prepareClasses(tx *bolt.Tx) error {
	for _, b := range [][]byte{classes, members, meta} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}

// TeachKey is the instructor's secret kept in the file, made (128 random
// bits, base64url) the first time it is asked for.
func (s *Store) TeachKey() (string, error) {
	var key string
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(meta)
		if v := b.Get(teachKey); len(v) > 0 {
			key = string(v)
			return nil
		}
		r := make([]byte, 16)
		rand.Read(r) // never fails (crypto/rand)
		key = base64.RawURLEncoding.EncodeToString(r)
		return b.Put(teachKey, []byte(key))
	})
	return key, err
}

// CodeAlphabet is what a class code is made of: no 0/O, 1/I/L to misread.
const CodeAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

// CodeLen is the length of a class code.
const CodeLen = 6

// ValidCode says whether code has a class code's form.
func ValidCode(code string) bool {
	if len(code) != CodeLen {
		return false
	}
	for _, c := range code {
		if !strings.ContainsRune(CodeAlphabet, c) {
			return false
		}
	}
	return true
}

func newCode() string {
	b := make([]byte, CodeLen)
	rand.Read(b) // never fails (crypto/rand)
	for i := range b {
		// 256 is not a multiple of 31: the bias (at most 1 in 8) does
		// not make a code guessable within the join rate limit.
		b[i] = CodeAlphabet[int(b[i])%len(CodeAlphabet)]
	}
	return string(b)
}

// NewClass makes a class on walk, at its first step, with a fresh code.
func (s *Store) NewClass(walk string) (Class, error) {
	if !walkID.MatchString(walk) {
		return Class{}, flow.Errorf(flow.Invalid, "%q is not a walkthrough id", walk)
	}
	c := Class{Walk: walk, Created: time.Now().UTC(), Lock: -1}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(classes)
		if b.Stats().KeyN >= MaxClasses {
			return flow.Errorf(flow.Unavailable, "this flowlab keeps %d classes already, its most", MaxClasses)
		}
		for {
			c.Code = newCode()
			if b.Get([]byte(c.Code)) == nil {
				break
			}
		}
		return putJSON(b, c.Code, c)
	})
	return c, err
}

// Class is the class with code; ok is false when there is none.
func (s *Store) Class(code string) (c Class, ok bool, err error) {
	if !ValidCode(code) {
		return Class{}, false, nil
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(classes).Get([]byte(code))
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &c)
	})
	return c, ok, err
}

// Classes is every class, the newest first.
func (s *Store) Classes() ([]Class, error) {
	var out []Class
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(classes).ForEach(func(_, v []byte) error {
			var c Class
			if err := json.Unmarshal(v, &c); err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	})
	slices.SortFunc(out, func(a, b Class) int { return b.Created.Compare(a.Created) })
	return out, err
}

// UpdateClass changes the class with code through update, in one
// transaction; an error from update changes nothing.
func (s *Store) UpdateClass(code string, update func(*Class) error) (Class, error) {
	var c Class
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(classes)
		v := b.Get([]byte(code))
		if v == nil {
			return flow.Errorf(flow.NotFound, "there is no class %q", code)
		}
		if err := json.Unmarshal(v, &c); err != nil {
			return err
		}
		if err := update(&c); err != nil {
			return err
		}
		return putJSON(b, code, c)
	})
	return c, err
}

// Join adds m, a member of class m.Class, under key (their token's hash):
// a name taken in the class (in any case) gets " 2", " 3"… The member is
// returned as kept.
func (s *Store) Join(key string, m Member) (Member, error) {
	code, name := m.Class, m.Name
	err := s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(classes).Get([]byte(code)) == nil {
			return flow.Errorf(flow.NotFound, "there is no class %q", code)
		}
		b := tx.Bucket(members)
		if b.Get([]byte(key)) != nil {
			return flow.Errorf(flow.Invalid, "this learner has joined already")
		}
		taken := map[string]bool{}
		n := 0
		err := b.ForEach(func(_, v []byte) error {
			var o Member
			if err := json.Unmarshal(v, &o); err != nil {
				return err
			}
			if o.Class == code {
				taken[strings.ToLower(o.Name)] = true
				n++
			}
			return nil
		})
		if err != nil {
			return err
		}
		if n >= MaxMembers {
			return flow.Errorf(flow.Unavailable, "class %s has %d learners, the most it takes", code, MaxMembers)
		}
		m.Seq, m.Joined = n+1, time.Now().UTC()
		for i := 2; taken[strings.ToLower(m.Name)]; i++ {
			m.Name = name + " " + strconv.Itoa(i)
		}
		return putJSON(b, key, m)
	})
	return m, err
}

// Member is the member under key; ok is false when there is none.
func (s *Store) Member(key string) (m Member, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(members).Get([]byte(key))
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &m)
	})
	return m, ok, err
}

// UpdateMember changes the member under key through update; it writes
// only when update changed it.
func (s *Store) UpdateMember(key string, update func(*Member)) error {
	var before []byte
	if err := s.db.View(func(tx *bolt.Tx) error {
		before = slices.Clone(tx.Bucket(members).Get([]byte(key)))
		return nil
	}); err != nil || before == nil {
		return err
	}
	var m Member
	if err := json.Unmarshal(before, &m); err != nil {
		return err
	}
	update(&m)
	if after, _ := json.Marshal(m); string(after) == string(before) {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(members)
		v := b.Get([]byte(key))
		if v == nil {
			return nil
		}
		var m Member
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		update(&m)
		return putJSON(b, key, m)
	})
}

// Keyed is a member with the key it is kept under.
type Keyed struct {
	Key string
	Member
}

// Members is class code's roster, in join order.
func (s *Store) Members(code string) ([]Keyed, error) {
	var out []Keyed
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(members).ForEach(func(k, v []byte) error {
			var m Member
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			if m.Class == code {
				out = append(out, Keyed{Key: string(k), Member: m})
			}
			return nil
		})
	})
	slices.SortFunc(out, func(a, b Keyed) int { return a.Seq - b.Seq })
	return out, err
}

// Counts are how many classes and members the file keeps.
func (s *Store) Counts() (classCount, memberCount int, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		classCount, memberCount = tx.Bucket(classes).Stats().KeyN, tx.Bucket(members).Stats().KeyN
		return nil
	})
	return
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Put([]byte(key), data)
}
