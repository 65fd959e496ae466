// Command smoke runs the Go client that OpenAPI Generator 7.26.0 generates from openapi.yaml
// (generator `go`, config clients/openapi-generator/go.yaml) against the mock gateway, used the way
// a Go team would use it: this module requires the generated module by its module path, replaces
// it with the generated folder, and is built by plain `go build`, pinned by its go.mod and go.sum.
//
// Every API call goes through the generated services and models, the key sent by the generated
// API-key auth (ContextAPIKeys, scheme subscriptionKey). It proves that:
//   - both submits queue a job (202) that polls to COMPLETED, and the images download and decode;
//   - a job's status only moves forward, QUEUED → PROCESSING → COMPLETED;
//   - the one typed submit result, SubmitResult, also parses the 200 of a sync_mode submit;
//   - fields the gateway added later are read without error and kept in AdditionalProperties;
//   - 402, 400 and 429 come back as the generated typed error, its model an ErrorResponse.
//
// Each check prints `PASS <name>` or `FAIL <name>: <reason>`; every check runs even after a failure
// (one that needs an earlier result fails as skipped); the exit status is 0 only if all passed.
//
// Build and run from the repository root, against a mock prepared as tools/client_smoke.py does
// (rate limit 10/s burst 10, a key with no balance, a key of its own for the 429, extra_fields
// {"progress": 0.5, "region": "eu-1"}):
//
//	go -C clients/openapi-generator/smoke/go build -buildvcs=false -o ../../../../build/clients/openapi-generator/go-smoke .
//	BOOGU_BASE_URL=http://127.0.0.1:8080 BOOGU_API_KEY=test-key BOOGU_BROKE_KEY=smoke-broke \
//	    BOOGU_THROTTLED_KEY=smoke-throttled build/clients/openapi-generator/go-smoke
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	boogu "example.com/boogu/boogu-openapi-client-go"
)

const (
	pollInterval  = 150 * time.Millisecond
	pollTimeout   = 30 * time.Second
	maxRapidPolls = 200
	textModel     = "boogu-image"
	editModel     = "boogu-image-edit"
	prompt        = "A lighthouse on a cliff in a storm, oil painting"
)

// formats are the image types the checks download: their signature and the standard decoder.
var formats = map[string]struct {
	magic  []byte
	decode func(io.Reader) (image.Image, error)
}{
	"image/jpeg": {[]byte{0xFF, 0xD8, 0xFF}, jpeg.Decode},
	"image/png":  {[]byte("\x89PNG\r\n\x1a\n"), png.Decode},
}

type settings struct {
	baseURL, key, brokeKey, throttledKey string
}

func settingsFromEnv() (settings, error) {
	var missing []string
	get := func(name string) string {
		value := os.Getenv(name)
		if value == "" {
			missing = append(missing, name)
		}
		return value
	}
	s := settings{
		baseURL:      strings.TrimRight(get("BOOGU_BASE_URL"), "/"),
		key:          get("BOOGU_API_KEY"),
		brokeKey:     get("BOOGU_BROKE_KEY"),
		throttledKey: get("BOOGU_THROTTLED_KEY"),
	}
	if len(missing) > 0 {
		return s, fmt.Errorf("set %s", strings.Join(missing, ", "))
	}
	return s, nil
}

// job is what polling one request saw: every status answer in order, the last one final.
type job struct {
	id      string
	answers []*boogu.RequestStatus
}

func (j *job) last() *boogu.RequestStatus {
	if len(j.answers) == 0 {
		return nil
	}
	return j.answers[len(j.answers)-1]
}

func (j *job) trace() string {
	names := make([]string, len(j.answers))
	for i, answer := range j.answers {
		names[i] = string(answer.Status)
	}
	return strings.Join(names, " → ")
}

// movedForward checks that the statuses never went back along QUEUED → PROCESSING → COMPLETED
// and ended at COMPLETED with completed_at set.
func (j *job) movedForward() error {
	rank := map[boogu.Status]int{boogu.QUEUED: 0, boogu.PROCESSING: 1, boogu.COMPLETED: 2}
	previous := -1
	for _, answer := range j.answers {
		r, ok := rank[answer.Status]
		if !ok || r < previous {
			return fmt.Errorf("%s: statuses %s", j.id, j.trace())
		}
		previous = r
	}
	final := j.last()
	if final == nil || final.Status != boogu.COMPLETED {
		return fmt.Errorf("%s: statuses %s do not end at COMPLETED", j.id, j.trace())
	}
	if final.GetCompletedAt() == "" {
		return fmt.Errorf("%s: COMPLETED without completed_at", j.id)
	}
	return nil
}

type smoke struct {
	settings
	api    *boogu.APIClient
	http   *http.Client
	failed bool
	// Results that later checks build on: the jobs of checks 1 and 3, and check 1's image URL.
	generated, edited *job
	imageURL          string
}

func newSmoke(s settings) *smoke {
	httpClient := &http.Client{Timeout: 30 * time.Second}
	cfg := boogu.NewConfiguration()
	cfg.Servers = boogu.ServerConfigurations{{URL: s.baseURL, Description: "the gateway under test"}}
	cfg.HTTPClient = httpClient
	return &smoke{settings: s, api: boogu.NewAPIClient(cfg), http: httpClient}
}

// check runs one check and prints its line; a panic fails the check, not the run.
func (s *smoke) check(name string, run func() error) {
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic: %v", p)
			}
		}()
		return run()
	}()
	if err != nil {
		s.failed = true
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	fmt.Printf("PASS %s\n", name)
}

// withKey is the context through which the generated auth sends Ocp-Apim-Subscription-Key.
func withKey(key string) context.Context {
	return context.WithValue(context.Background(), boogu.ContextAPIKeys,
		map[string]boogu.APIKey{"subscriptionKey": {Key: key}})
}

func newTextToImage(width, height int32) *boogu.TextToImageRequest {
	request := boogu.NewTextToImageRequest(prompt)
	request.SetImageSize(boogu.CustomImageSizeAsImageSize(boogu.NewCustomImageSize(width, height)))
	return request
}

func (s *smoke) submitTextToImage(key string, request *boogu.TextToImageRequest) (*boogu.SubmitResult, *http.Response, error) {
	return s.api.TextToImageAPI.SubmitTextToImage(withKey(key)).TextToImageRequest(*request).Execute()
}

func (s *smoke) getStatus(key, id string) (*boogu.RequestStatus, *http.Response, error) {
	return s.api.StatusAPI.GetRequestStatus(withKey(key), id).Execute()
}

// unexpected describes an error where an answer was expected, with the status and body if any.
func unexpected(err error, resp *http.Response) error {
	var apiErr *boogu.GenericOpenAPIError
	if errors.As(err, &apiErr) && resp != nil {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(apiErr.Body()))
	}
	return err
}

// apiError unpacks the generated client's typed error for the expected HTTP status. The go
// generator's GenericOpenAPIError holds the raw body and Model(), an interface{} with the
// ErrorResponse value decoded for the statuses the spec declares, but no status code and no
// headers: those come from the *http.Response that Execute returns beside the error.
func apiError(resp *http.Response, err error, want int) (boogu.ErrorResponse, error) {
	var apiErr *boogu.GenericOpenAPIError
	switch {
	case err == nil:
		return boogu.ErrorResponse{}, fmt.Errorf("want HTTP %d, the call succeeded with %d", want, resp.StatusCode)
	case !errors.As(err, &apiErr):
		return boogu.ErrorResponse{}, fmt.Errorf("want a *boogu.GenericOpenAPIError, got %T: %v", err, err)
	case resp == nil || resp.StatusCode != want:
		return boogu.ErrorResponse{}, fmt.Errorf("want HTTP %d, got %v", want, err)
	}
	model, ok := apiErr.Model().(boogu.ErrorResponse)
	if !ok {
		return model, fmt.Errorf("error model is %T, not boogu.ErrorResponse (body %s)", apiErr.Model(), apiErr.Body())
	}
	return model, nil
}

// queued checks a submit's 202 ticket and returns its request_id.
func (s *smoke) queued(model string, result *boogu.SubmitResult, resp *http.Response, err error) (string, error) {
	if err != nil {
		return "", fmt.Errorf("submit: %w", unexpected(err, resp))
	}
	if resp.StatusCode != http.StatusAccepted || result.Status != boogu.QUEUED {
		return "", fmt.Errorf("submit answered %d %s, want 202 QUEUED", resp.StatusCode, result.Status)
	}
	id := result.RequestId
	if !strings.HasPrefix(id, model+"_") {
		return id, fmt.Errorf("request_id %q does not start with %q", id, model+"_")
	}
	if want := s.baseURL + "/v2/requests/status/" + id; result.GetPollingUrl() != want {
		return id, fmt.Errorf("polling_url %q, want %q", result.GetPollingUrl(), want)
	}
	return id, nil
}

// poll asks for a job's status every pollInterval until it is final; the job keeps every answer.
func (s *smoke) poll(key, id string) (*job, error) {
	j := &job{id: id}
	deadline := time.Now().Add(pollTimeout)
	for {
		status, resp, err := s.getStatus(key, id)
		if err != nil {
			return j, fmt.Errorf("status of %s: %w", id, unexpected(err, resp))
		}
		j.answers = append(j.answers, status)
		switch status.Status {
		case boogu.COMPLETED:
			return j, nil
		case boogu.FAILED, boogu.ERROR:
			return j, fmt.Errorf("%s ended %s: %s", id, status.Status, status.GetError())
		}
		if time.Now().After(deadline) {
			return j, fmt.Errorf("%s still %s after %v", id, status.Status, pollTimeout)
		}
		time.Sleep(pollInterval)
	}
}

// runJob submits, checks the 202 ticket, polls to COMPLETED and checks the model that did it.
func (s *smoke) runJob(model string, submit func() (*boogu.SubmitResult, *http.Response, error)) (*job, error) {
	result, resp, err := submit()
	id, err := s.queued(model, result, resp, err)
	if err != nil {
		return nil, err
	}
	j, err := s.poll(s.key, id)
	if err != nil {
		return j, err
	}
	if got := j.last().ModelId; got != model {
		return j, fmt.Errorf("model_id %q, want %q", got, model)
	}
	return j, nil
}

// checkImage checks an image's signature, decodes it with the standard library and checks its size.
func checkImage(data []byte, mediaType string, width, height int) error {
	format := formats[mediaType]
	if !bytes.HasPrefix(data, format.magic) {
		return fmt.Errorf("%d bytes that do not start with the %s signature", len(data), mediaType)
	}
	img, err := format.decode(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("decoding %s: %w", mediaType, err)
	}
	if size := img.Bounds().Size(); size.X != width || size.Y != height {
		return fmt.Errorf("%s is %dx%d, want %dx%d", mediaType, size.X, size.Y, width, height)
	}
	return nil
}

// download GETs a media URL (plain net/http: media is no API operation and needs no key).
func (s *smoke) download(url, mediaType string) ([]byte, error) {
	resp, err := s.http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	if got, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); got != mediaType {
		return nil, fmt.Errorf("GET %s: Content-Type %q, want %s", url, got, mediaType)
	}
	return data, nil
}

// fetchImage downloads a finished job's first image and checks it; it returns the image's URL.
func (s *smoke) fetchImage(j *job, mediaType string, width, height int) (string, error) {
	output, _ := j.last().GetOutputOk()
	if output == nil || len(output.MediaUrl) == 0 {
		return "", fmt.Errorf("%s: COMPLETED without output.media_url", j.id)
	}
	if output.MediaType != mediaType {
		return "", fmt.Errorf("%s: media_type %q, want %s", j.id, output.MediaType, mediaType)
	}
	url := output.MediaUrl[0]
	data, err := s.download(url, mediaType)
	if err != nil {
		return url, err
	}
	return url, checkImage(data, mediaType, width, height)
}

// 1. A custom size through the ImageSize oneOf, a fixed seed, polled to a 320x240 JPEG.
func (s *smoke) textToImage() error {
	request := newTextToImage(320, 240)
	request.SetSeed(7)
	j, err := s.runJob(textModel, func() (*boogu.SubmitResult, *http.Response, error) {
		return s.submitTextToImage(s.key, request)
	})
	s.generated = j
	if err != nil {
		return err
	}
	url, err := s.fetchImage(j, "image/jpeg", 320, 240)
	if err != nil {
		return err
	}
	s.imageURL = url
	return nil
}

// 2. Check 1's statuses only moved forward (check 3 checks its own job the same way).
func (s *smoke) statusFlow() error {
	if s.generated == nil || len(s.generated.answers) == 0 {
		return errors.New("skipped: text_to_image polled no status")
	}
	return s.generated.movedForward()
}

// 3. An edit of check 1's image, a preset size through the ImageSize oneOf, polled to a 512x512 PNG.
func (s *smoke) imageEdit() error {
	if s.imageURL == "" {
		return errors.New("skipped: text_to_image gave no image to edit")
	}
	request := boogu.NewImageEditRequest("Make it look like a pencil sketch", s.imageURL)
	request.SetOutputFormat("png")
	request.SetImageSize(boogu.ImageSizePresetAsImageSize(boogu.SQUARE.Ptr()))
	j, err := s.runJob(editModel, func() (*boogu.SubmitResult, *http.Response, error) {
		return s.api.ImageEditAPI.SubmitImageEdit(withKey(s.key)).ImageEditRequest(*request).Execute()
	})
	s.edited = j
	if err != nil {
		return err
	}
	if err := j.movedForward(); err != nil {
		return err
	}
	_, err = s.fetchImage(j, "image/png", 512, 512)
	return err
}

// 4. The same typed submit call parses the 200 of sync_mode: the finished job, the image inline.
func (s *smoke) syncMode() error {
	request := newTextToImage(320, 240)
	request.SetSyncMode(true)
	result, resp, err := s.submitTextToImage(s.key, request)
	if err != nil {
		return fmt.Errorf("submit: %w", unexpected(err, resp))
	}
	if resp.StatusCode != http.StatusOK || result.Status != boogu.COMPLETED {
		return fmt.Errorf("submit answered %d %s, want 200 COMPLETED", resp.StatusCode, result.Status)
	}
	if got := result.GetModelId(); got != textModel {
		return fmt.Errorf("model_id %q, want %q", got, textModel)
	}
	output, _ := result.GetOutputOk()
	if output == nil || len(output.MediaUrl) == 0 {
		return errors.New("COMPLETED without output.media_url")
	}
	const prefix = "data:image/jpeg;base64,"
	uri := output.MediaUrl[0]
	if !strings.HasPrefix(uri, prefix) {
		return fmt.Errorf("media_url[0] starts %.40q, want %q", uri, prefix)
	}
	data, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(uri, prefix))
	if err != nil {
		return fmt.Errorf("media_url[0]: %w", err)
	}
	return checkImage(data, "image/jpeg", 320, 240)
}

// 5. The mock adds progress and region to every answer: the status answers of checks 1 and 3 were
// parsed (any error would have failed them), and the go generator keeps the unknown fields in each
// model's AdditionalProperties map, so their values are checked there.
func (s *smoke) unknownFields() error {
	var answers []*boogu.RequestStatus
	for _, j := range []*job{s.generated, s.edited} {
		if j != nil {
			answers = append(answers, j.answers...)
		}
	}
	if len(answers) == 0 {
		return errors.New("skipped: no status answer was read")
	}
	for _, answer := range answers {
		extra := answer.AdditionalProperties
		if extra["region"] != "eu-1" || extra["progress"] != 0.5 {
			return fmt.Errorf("%s (%s): AdditionalProperties %v, want region eu-1 and progress 0.5",
				answer.RequestId, answer.Status, extra)
		}
	}
	return nil
}

// 6. A key with no balance: 402, the typed error with its ErrorResponse.
func (s *smoke) error402() error {
	_, resp, err := s.submitTextToImage(s.brokeKey, newTextToImage(320, 240))
	body, err := apiError(resp, err, http.StatusPaymentRequired)
	if err != nil {
		return err
	}
	if body.Error != "Insufficient Balance" {
		return fmt.Errorf("error %q, want %q", body.Error, "Insufficient Balance")
	}
	return nil
}

// 7. A parameter out of its range: the generated client does not check ranges, the gateway
// answers 400 and names the parameter.
func (s *smoke) error400() error {
	request := newTextToImage(320, 240)
	request.SetNumInferenceSteps(99)
	_, resp, err := s.submitTextToImage(s.key, request)
	body, err := apiError(resp, err, http.StatusBadRequest)
	if err != nil {
		return err
	}
	if body.Error == "" || !strings.Contains(body.Message, "num_inference_steps") {
		return fmt.Errorf("error %q, message %q: want an error naming num_inference_steps", body.Error, body.Message)
	}
	return nil
}

// 8. Polling without pause until the key's rate limit answers 429 (the generated client never
// retries by itself), then waiting Retry-After seconds, read from the *http.Response that the
// generated call returns beside its error, before polling the job to COMPLETED.
func (s *smoke) error429() error {
	key := s.throttledKey
	result, resp, err := s.submitTextToImage(key, newTextToImage(320, 240))
	id, err := s.queued(textModel, result, resp, err)
	if err != nil {
		return err
	}
	var limited *http.Response
	for i := 0; i < maxRapidPolls && limited == nil; i++ {
		_, resp, err = s.getStatus(key, id)
		if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
			limited = resp
		} else if err != nil {
			return fmt.Errorf("status of %s: %w", id, unexpected(err, resp))
		}
	}
	if limited == nil {
		return fmt.Errorf("no 429 in %d status polls without pause", maxRapidPolls)
	}
	body, err := apiError(limited, err, http.StatusTooManyRequests)
	if err != nil {
		return err
	}
	if body.Error != "Too Many Requests" {
		return fmt.Errorf("error %q, want %q", body.Error, "Too Many Requests")
	}
	retryAfter, err := strconv.Atoi(limited.Header.Get("Retry-After"))
	if err != nil || retryAfter < 0 {
		return fmt.Errorf("Retry-After %q is not a non-negative integer", limited.Header.Get("Retry-After"))
	}
	time.Sleep(time.Duration(retryAfter) * time.Second)
	_, err = s.poll(key, id)
	return err
}

func main() {
	settings, err := settingsFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "smoke:", err)
		os.Exit(2)
	}
	s := newSmoke(settings)
	s.check("text_to_image", s.textToImage)
	s.check("status_flow", s.statusFlow)
	s.check("image_edit", s.imageEdit)
	s.check("sync_mode", s.syncMode)
	s.check("unknown_fields", s.unknownFields)
	s.check("error_402", s.error402)
	s.check("error_400", s.error400)
	s.check("error_429", s.error429)
	if s.failed {
		os.Exit(1)
	}
}
