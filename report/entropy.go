package report

import "github.com/outflow-sensor/outflow/entropy"

// The entropy chart: samples by class, in bins of half a bit per byte.
const (
	numClasses  = int(entropy.Mixed) + 1
	entropyBins = 16
)

// entropyBin is the bin of a Shannon entropy in bits per byte (0 to 8).
func entropyBin(bits float64) int {
	if !(bits > 0) { // NaN too
		return 0
	}
	return min(int(bits*2), entropyBins-1)
}
