package v1alpha1

import (
	"fmt"
	"time"

	"github.com/gobwas/glob"
	"github.com/robfig/cron/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AppProject is an Argo CD project (only its sync windows are kept).
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type AppProject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              AppProjectSpec `json:"spec"`
}

// AppProjectList is a list of AppProjects.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type AppProjectList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata"`
	Items           []AppProject `json:"items"`
}

// AppProjectSpec holds the project's sync windows.
type AppProjectSpec struct {
	SyncWindows SyncWindows `json:"syncWindows,omitempty"`
}

// SyncWindows is a project's sync windows.
type SyncWindows []*InlineSyncWindow

// InlineSyncWindow is one sync window: when it is open, for how long, and
// the apps it applies to.
type InlineSyncWindow struct {
	Kind           string   `json:"kind,omitempty"`
	Schedule       string   `json:"schedule,omitempty"`
	Duration       string   `json:"duration,omitempty"`
	Applications   []string `json:"applications,omitempty"`
	Namespaces     []string `json:"namespaces,omitempty"`
	Clusters       []string `json:"clusters,omitempty"`
	ManualSync     bool     `json:"manualSync,omitempty"`
	TimeZone       string   `json:"timeZone,omitempty"`
	UseAndOperator bool     `json:"andOperator,omitempty"`
	Description    string   `json:"description,omitempty"`
	SyncOverrun    bool     `json:"syncOverrun,omitempty"`
}

// The sync window logic below is Argo CD v3.6.1's (pkg/apis/application/
// v1alpha1/types.go, Apache 2.0), kept as it is so that crowsnest decides
// "held by a window" exactly as the controller decides whether it may sync:
// Matches, CanSync and their helpers. Only the logging of an invalid time
// zone is left out (UTC is used, as Argo CD does).

// HasWindows reports whether there is at least one window.
func (w *SyncWindows) HasWindows() bool {
	return w != nil && len(*w) > 0
}

// Active returns the windows open now.
func (w *SyncWindows) Active() (*SyncWindows, error) {
	return w.active(time.Now())
}

func (w *SyncWindows) active(currentTime time.Time) (*SyncWindows, error) {
	currentTime = currentTime.In(time.UTC)
	if w.HasWindows() {
		var active SyncWindows
		specParser := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)
		for _, w := range *w {
			schedule, sErr := specParser.Parse(w.Schedule)
			if sErr != nil {
				return nil, fmt.Errorf("cannot parse schedule '%s': %w", w.Schedule, sErr)
			}
			duration, dErr := time.ParseDuration(w.Duration)
			if dErr != nil {
				return nil, fmt.Errorf("cannot parse duration '%s': %w", w.Duration, dErr)
			}
			timeZoneOffsetDuration := w.scheduleOffsetByTimeZone()
			nextWindow := schedule.Next(currentTime.Add(timeZoneOffsetDuration - duration))
			if nextWindow.Before(currentTime.Add(timeZoneOffsetDuration)) {
				active = append(active, w)
			}
		}
		if len(active) > 0 {
			return &active, nil
		}
	}
	return nil, nil
}

// InactiveAllows returns the allow windows closed now.
func (w *SyncWindows) InactiveAllows() (*SyncWindows, error) {
	return w.inactiveAllows(time.Now())
}

func (w *SyncWindows) inactiveAllows(currentTime time.Time) (*SyncWindows, error) {
	currentTime = currentTime.In(time.UTC)
	if w.HasWindows() {
		var inactive SyncWindows
		specParser := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)
		for _, w := range *w {
			if w.Kind != "allow" {
				continue
			}
			schedule, sErr := specParser.Parse(w.Schedule)
			if sErr != nil {
				return nil, fmt.Errorf("cannot parse schedule '%s': %w", w.Schedule, sErr)
			}
			duration, dErr := time.ParseDuration(w.Duration)
			if dErr != nil {
				return nil, fmt.Errorf("cannot parse duration '%s': %w", w.Duration, dErr)
			}
			timeZoneOffsetDuration := w.scheduleOffsetByTimeZone()
			nextWindow := schedule.Next(currentTime.Add(timeZoneOffsetDuration - duration))
			if !nextWindow.Before(currentTime.Add(timeZoneOffsetDuration)) {
				inactive = append(inactive, w)
			}
		}
		if len(inactive) > 0 {
			return &inactive, nil
		}
	}
	return nil, nil
}

func (w *InlineSyncWindow) scheduleOffsetByTimeZone() time.Duration {
	loc, err := time.LoadLocation(w.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	_, tzOffset := time.Now().In(loc).Zone()
	return time.Duration(tzOffset) * time.Second
}

// Matches returns the windows that apply to app (nil if none), with the
// AND operator when a window asks for it, else OR.
func (w *SyncWindows) Matches(app *Application) *SyncWindows {
	if w.HasWindows() {
		var matchingWindows SyncWindows
		var matched, isSet bool
		for _, window := range *w {
			matched = false
			isSet = false
			if len(window.Applications) > 0 {
				isSet = true
				for _, a := range window.Applications {
					if globMatch(a, app.Name) {
						matched = true
						break
					}
				}
			}
			if window.UseAndOperator && !matched && isSet {
				continue
			} else if !window.UseAndOperator && matched {
				matchingWindows = append(matchingWindows, window)
				continue
			}
			if len(window.Clusters) > 0 {
				matched = false
				isSet = true
				for _, c := range window.Clusters {
					dst := app.Spec.Destination
					dstNameMatched := dst.Name != "" && globMatch(c, dst.Name)
					dstServerMatched := dst.Server != "" && globMatch(c, dst.Server)
					if dstNameMatched || dstServerMatched {
						matched = true
						break
					}
				}
			}
			if isSet && window.UseAndOperator && !matched {
				continue
			} else if !window.UseAndOperator && matched {
				matchingWindows = append(matchingWindows, window)
				continue
			}
			if len(window.Namespaces) > 0 {
				matched = false
				for _, n := range window.Namespaces {
					if globMatch(n, app.Spec.Destination.Namespace) {
						matched = true
						break
					}
				}
			}
			if matched {
				matchingWindows = append(matchingWindows, window)
			}
		}
		if len(matchingWindows) > 0 {
			return &matchingWindows
		}
	}
	return nil
}

// globMatch is Argo CD's glob match (gobwas/glob, no separators); a
// pattern that does not compile matches nothing.
func globMatch(pattern, val string) bool {
	if pattern == "*" {
		return true
	}
	g, err := glob.Compile(pattern)
	if err != nil {
		return false
	}
	return g.Match(val)
}

// CanSync reports whether the windows allow a sync now; isManual for a
// manual sync, operationStartTime for a running one (sync overrun).
func (w *SyncWindows) CanSync(isManual bool, operationStartTime *time.Time) (bool, error) {
	if !w.HasWindows() {
		return true, nil
	}
	active, err := w.Active()
	if err != nil {
		return false, fmt.Errorf("invalid sync windows: %w", err)
	}
	hasActiveDeny, manualEnabled := active.hasDeny()
	if hasActiveDeny {
		if isManual && manualEnabled {
			return true, nil
		}
		if operationStartTime != nil && !operationStartTime.IsZero() && active.denyAllowsOverrun() {
			wasAllowed, err := w.canSyncAtTime(isManual, *operationStartTime)
			if err != nil {
				return false, err
			}
			if wasAllowed {
				return true, nil
			}
		}
		return false, nil
	}
	if active.hasAllow() {
		return true, nil
	}
	inactiveAllows, err := w.InactiveAllows()
	if err != nil {
		return false, fmt.Errorf("invalid sync windows: %w", err)
	}
	if inactiveAllows.HasWindows() {
		if isManual && inactiveAllows.manualEnabled() {
			return true, nil
		}
		if operationStartTime != nil && !operationStartTime.IsZero() && inactiveAllows.inactiveAllowsAllowOverrun() {
			wasAllowed, err := w.canSyncAtTime(isManual, *operationStartTime)
			if err != nil {
				return false, err
			}
			if wasAllowed {
				return true, nil
			}
		}
		return false, nil
	}
	return true, nil
}

func (w *SyncWindows) hasDeny() (bool, bool) {
	if !w.HasWindows() {
		return false, false
	}
	var denyFound, manualEnabled bool
	for _, a := range *w {
		if a.Kind == "deny" {
			if !denyFound {
				manualEnabled = a.ManualSync
			} else if manualEnabled {
				manualEnabled = a.ManualSync
			}
			denyFound = true
		}
	}
	return denyFound, manualEnabled
}

func (w *SyncWindows) hasAllow() bool {
	if !w.HasWindows() {
		return false
	}
	for _, a := range *w {
		if a.Kind == "allow" {
			return true
		}
	}
	return false
}

func (w *SyncWindows) manualEnabled() bool {
	if !w.HasWindows() {
		return false
	}
	for _, s := range *w {
		if !s.ManualSync {
			return false
		}
	}
	return true
}

func (w *SyncWindows) denyAllowsOverrun() bool {
	if !w.HasWindows() {
		return false
	}
	hasDeny := false
	for _, s := range *w {
		if s.Kind == "deny" {
			hasDeny = true
			if !s.SyncOverrun {
				return false
			}
		}
	}
	return hasDeny
}

func (w *SyncWindows) inactiveAllowsAllowOverrun() bool {
	if !w.HasWindows() {
		return false
	}
	hasAllow := false
	for _, s := range *w {
		if s.Kind == "allow" {
			hasAllow = true
			if !s.SyncOverrun {
				return false
			}
		}
	}
	return hasAllow
}

func (w *SyncWindows) canSyncAtTime(isManual bool, checkTime time.Time) (bool, error) {
	if !w.HasWindows() {
		return true, nil
	}
	active, err := w.active(checkTime)
	if err != nil {
		return false, fmt.Errorf("invalid sync windows: %w", err)
	}
	hasActiveDeny, manualEnabled := active.hasDeny()
	if hasActiveDeny {
		if isManual && manualEnabled {
			return true, nil
		}
		return false, nil
	}
	if active.hasAllow() {
		return true, nil
	}
	inactiveAllows, err := w.inactiveAllows(checkTime)
	if err != nil {
		return false, fmt.Errorf("invalid sync windows: %w", err)
	}
	if inactiveAllows.HasWindows() {
		if isManual && inactiveAllows.manualEnabled() {
			return true, nil
		}
		return false, nil
	}
	return true, nil
}
