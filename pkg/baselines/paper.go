package baselines

import (
	"math"

	"github.com/infadapter/infadapter/pkg/optimizer"
	"github.com/infadapter/infadapter/pkg/sim"
)

// PaperResNet returns the paper's ResNet family (reference §1.3, §1.5):
// the measured capacities at P99 750 ms (1–20 cores, linear between
// measured points) as the simulator's truth, and the planning model the
// paper's adapter used: per variant a least-squares line over cores
// {1,2,4,8,16}, intercept clipped to ≤ 0.99 and truncated to an integer,
// capacity int(0.8·(a·n + b)) floored at 0.
func PaperResNet() (truth []sim.Variant, plan []optimizer.Variant) {
	cores := []int{1, 2, 4, 8, 12, 16, 20}
	meas := [][]float64{
		{19, 43, 90, 190, 289, 385, 473},
		{12, 25, 54, 94, 162, 210, 259},
		{8, 17, 36, 78, 118, 162, 200},
		{5, 10, 22, 39, 65, 82, 98},
		{1, 5, 15, 27, 39, 59, 67},
	}
	names := []string{"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"}
	acc := []float64{0.69758, 0.73314, 0.7613, 0.77374, 0.78312}
	load := []float64{6.44, 6.79, 6.82, 7.77, 8.52}
	for i := range names {
		tbl := make([]float64, 21)
		for c := 1; c <= 20; c++ {
			for k := range cores {
				if cores[k] == c {
					tbl[c] = meas[i][k]
				} else if k+1 < len(cores) && c > cores[k] && c < cores[k+1] {
					f := float64(c-cores[k]) / float64(cores[k+1]-cores[k])
					tbl[c] = meas[i][k] + f*(meas[i][k+1]-meas[i][k])
				}
			}
		}
		truth = append(truth, sim.Variant{Name: names[i], Accuracy: acc[i], LoadTime: load[i], Capacity: tbl})
		// Fit on cores {1,2,4,8,16} (indices 0,1,2,3,5).
		xs := []float64{1, 2, 4, 8, 16}
		ys := []float64{meas[i][0], meas[i][1], meas[i][2], meas[i][3], meas[i][5]}
		a, b := linfit(xs, ys)
		b = math.Trunc(math.Min(b, 0.99))
		capTbl := make([]float64, 21)
		for c := 1; c <= 20; c++ {
			capTbl[c] = math.Max(0, math.Trunc(0.8*(a*float64(c)+b)))
		}
		plan = append(plan, optimizer.Variant{Name: names[i], Accuracy: acc[i], LoadTime: load[i], Capacity: capTbl})
	}
	return truth, plan
}

func linfit(x, y []float64) (a, b float64) {
	var sx, sy, sxx, sxy float64
	n := float64(len(x))
	for i := range x {
		sx += x[i]
		sy += y[i]
		sxx += x[i] * x[i]
		sxy += x[i] * y[i]
	}
	a = (n*sxy - sx*sy) / (n*sxx - sx*sx)
	b = (sy - a*sx) / n
	return a, b
}
