// Package progress keeps each learner's walkthrough progress in an embedded
// bbolt file, so that it survives a restart. A learner is an anonymous random
// id (NewLearner); nothing else about them is kept.
package progress

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"flowlab/flow"
)

// LockWait is how long Open waits for a file another flowlab holds before it
// says so, rather than hanging.
const LockWait = time.Second

// Limits on what one learner's record may hold, so that no input grows it
// without bound.
const (
	MaxWalks  = 200 // walkthroughs per learner
	MaxSteps  = 200 // steps per walkthrough
	maxAnswer = 64  // bytes of a prediction's choice id
)

// learners holds one JSON value per learner id: their Progress.
var learners = []byte("learners")

// Store is the progress file. It is safe for concurrent use: bbolt runs one
// writer at a time and readers alongside.
type Store struct {
	db   *bolt.DB
	path string
}

// Progress is one learner's progress: every walkthrough they started, by id.
type Progress struct {
	Learner string `json:"learner"`
	Walks   []Walk `json:"walks"`
}

// Walk is what a learner did in one walkthrough. Steps are numbered from 0,
// as in the walkthrough's file; each list is ascending, without repeats.
type Walk struct {
	Walk        string       `json:"walk"`
	Started     time.Time    `json:"started"`
	Finished    time.Time    `json:"finished,omitzero"` // the first time every step was done
	Done        []int        `json:"done"`              // steps done
	Passed      []int        `json:"passed"`            // checks passed, assisted or not
	Assisted    []int        `json:"assisted"`          // checks passed only with "Show me" so far
	Predictions []Prediction `json:"predictions"`
}

// Prediction is the choice a learner made at a predict step, and whether the
// measured outcome agreed, once the check after it judged.
type Prediction struct {
	Step    int    `json:"step"`
	Answer  string `json:"answer"`
	Correct *bool  `json:"correct,omitempty"`
}

// Open opens the progress file at path, creating it and its folder (0700) if
// need be. A file another flowlab holds, or one that is not a readable
// progress file, is refused with a sentence saying what to do.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("progress file %s: cannot create its folder: %w", path, err)
	}
	db, err := openBolt(path)
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("progress file %s is in use by another flowlab (its lock was not free within %v): give each flowlab its own -progress / FLOWLAB_PROGRESS", path, LockWait)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, errDamaged):
		return nil, unreadable(path, err)
	case err != nil:
		return nil, fmt.Errorf("progress file %s: %w", path, err)
	}
	if err := prepare(db); err != nil {
		db.Close()
		return nil, unreadable(path, err)
	}
	return &Store{db: db, path: path}, nil
}

// openBolt opens the file, turning bbolt's panic on some damaged files
// into an error. The file then stays open until flowlab, which stops on
// this error, exits. A file cut short makes bbolt read its memory map past
// the file's end, a fault that would kill the process: SetPanicOnFault
// makes it a panic recover can take.
func openBolt(path string) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errDamaged, p)
		}
	}()
	return bolt.Open(path, 0o600, &bolt.Options{Timeout: LockWait})
}

// errDamaged is a file bbolt panicked on.
var errDamaged = errors.New("damaged")

func unreadable(path string, err error) error {
	return fmt.Errorf("progress file %s is not a readable flowlab progress file (%v): move it away to start afresh, or give another -progress / FLOWLAB_PROGRESS", path, err)
}

// prepare makes the learners bucket in a new file and reads every record of
// an old one, so that a damaged file is refused at start, not when a learner
// opens the start page. bbolt panics on some damaged pages; that is caught
// here, as it happens in this goroutine.
func prepare(db *bolt.DB) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errDamaged, p)
		}
	}()
	return db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(learners)
		if b == nil {
			// Another program's bbolt file is not ours to write in.
			if k, _ := tx.Cursor().First(); k != nil {
				return fmt.Errorf("it holds %q, not flowlab's learners", k)
			}
			if _, err := tx.CreateBucket(learners); err != nil {
				return err
			}
			return prepareClasses(tx)
		}
		if err := prepareClasses(tx); err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			if !ValidLearner(string(k)) {
				return fmt.Errorf("it holds %q, which is no learner id", k)
			}
			var p Progress
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("learner %s: %v", k, err)
			}
			return nil
		})
	})
}

// Close closes the file, letting another flowlab open it.
func (s *Store) Close() error { return s.db.Close() }

// Learner is the progress of learner id, with no walks for a learner never
// seen. Only an id of NewLearner's format is looked up.
func (s *Store) Learner(id string) (Progress, error) {
	if !ValidLearner(id) {
		return Progress{}, flow.Errorf(flow.Invalid, "%q is not a learner id", id)
	}
	p := Progress{Learner: id, Walks: []Walk{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(learners).Get([]byte(id))
		if v == nil {
			return nil
		}
		return json.Unmarshal(v, &p)
	})
	if err != nil {
		return Progress{}, fmt.Errorf("progress of learner %s in %s: %w", id, s.path, err)
	}
	return p, nil
}

// Record changes learner's progress in walk through update, in one
// transaction: concurrent Records of one learner never lose each other's
// changes. The walk is started (now) on its first Record. If update returns an
// error nothing is changed, and Record returns it.
func (s *Store) Record(learner, walk string, update func(*Walk) error) error {
	if !ValidLearner(learner) {
		return flow.Errorf(flow.Invalid, "%q is not a learner id", learner)
	}
	if !walkID.MatchString(walk) || len(walk) > 64 {
		return flow.Errorf(flow.Invalid, "%q is not a walkthrough id (lower-case words joined by -)", walk)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(learners)
		p := Progress{Learner: learner}
		if v := b.Get([]byte(learner)); v != nil {
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("progress of learner %s in %s: %w", learner, s.path, err)
			}
		}
		i := slices.IndexFunc(p.Walks, func(w Walk) bool { return w.Walk == walk })
		if i < 0 {
			if len(p.Walks) >= MaxWalks {
				return flow.Errorf(flow.Invalid, "learner %s has started %d walkthroughs, the most kept", learner, MaxWalks)
			}
			p.Walks = append(p.Walks, Walk{Walk: walk, Started: time.Now().UTC(), Done: []int{}, Passed: []int{}, Assisted: []int{}, Predictions: []Prediction{}})
			slices.SortFunc(p.Walks, func(a, b Walk) int { return strings.Compare(a.Walk, b.Walk) })
			i = slices.IndexFunc(p.Walks, func(w Walk) bool { return w.Walk == walk })
		}
		// An error rolls the transaction back: nothing is written.
		if err := update(&p.Walks[i]); err != nil {
			return err
		}
		p.Walks[i].Walk = walk
		v, err := json.Marshal(p)
		if err != nil {
			return err
		}
		return b.Put([]byte(learner), v)
	})
}

// MarkDone records that step was done (seen, answered, acted or passed).
func (w *Walk) MarkDone(step int) error {
	if err := checkStep(step); err != nil {
		return err
	}
	w.Done = insert(w.Done, step)
	return nil
}

// MarkPassed records that the check at step passed, with "Show me" if
// assisted. A step stays assisted only while no pass of it was the
// learner's alone.
func (w *Walk) MarkPassed(step int, assisted bool) error {
	if err := checkStep(step); err != nil {
		return err
	}
	switch {
	case !assisted:
		w.Assisted = slices.DeleteFunc(w.Assisted, func(s int) bool { return s == step })
	case !slices.Contains(w.Passed, step):
		w.Assisted = insert(w.Assisted, step)
	}
	w.Passed = insert(w.Passed, step)
	w.Done = insert(w.Done, step)
	return nil
}

// MarkAnswered records the choice made at the predict step. An answer locks
// within one run of a walk (the engine sees to it); a walk started again may
// be answered otherwise, and then that answer is kept, to be judged anew.
func (w *Walk) MarkAnswered(step int, answer string) error {
	if err := checkStep(step); err != nil {
		return err
	}
	if answer == "" || len(answer) > maxAnswer || !utf8.ValidString(answer) {
		return flow.Errorf(flow.Invalid, "%q is not a choice id (1 to %d bytes of text)", answer, maxAnswer)
	}
	for i, p := range w.Predictions {
		if p.Step == step {
			if p.Answer != answer {
				w.Predictions[i] = Prediction{Step: step, Answer: answer}
			}
			return nil
		}
	}
	w.Predictions = append(w.Predictions, Prediction{Step: step, Answer: answer})
	slices.SortFunc(w.Predictions, func(a, b Prediction) int { return a.Step - b.Step })
	w.Done = insert(w.Done, step)
	return nil
}

// MarkJudged records whether the answer at the predict step agreed with
// what was measured.
func (w *Walk) MarkJudged(step int, correct bool) error {
	for i, p := range w.Predictions {
		if p.Step == step {
			w.Predictions[i].Correct = &correct
			return nil
		}
	}
	return flow.Errorf(flow.Invalid, "step %d has no answer to judge", step)
}

// MarkFinished records that every step is done, at the first time only.
func (w *Walk) MarkFinished(at time.Time) {
	if w.Finished.IsZero() {
		w.Finished = at.UTC()
	}
}

func checkStep(step int) error {
	if step < 0 || step >= MaxSteps {
		return flow.Errorf(flow.Invalid, "step %d is not a step number (0 to %d)", step, MaxSteps-1)
	}
	return nil
}

// insert adds n to the ascending list s, once.
func insert(s []int, n int) []int {
	i, found := slices.BinarySearch(s, n)
	if found {
		return s
	}
	return slices.Insert(s, i, n)
}

var walkID = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// learnerBytes is the size of a learner id's randomness: 128 bits, so that
// nobody guesses another's.
const learnerBytes = 16

// NewLearner is a fresh anonymous learner id: 128 random bits, base64url
// without padding (22 characters).
func NewLearner() string {
	b := make([]byte, learnerBytes)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ValidLearner says whether id has exactly NewLearner's format. Only such an
// id is ever used as a key.
func ValidLearner(id string) bool {
	if len(id) != base64.RawURLEncoding.EncodedLen(learnerBytes) {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(id)
	return err == nil && len(b) == learnerBytes
}
