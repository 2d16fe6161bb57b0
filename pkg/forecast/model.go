package forecast

// DefaultLSTM returns the built-in LSTM trained on the Twitter trace's
// first 14 days. Until a model file is embedded it returns ErrNotTrained.
func DefaultLSTM() (*LSTM, error) {
	return nil, ErrNotTrained
}
