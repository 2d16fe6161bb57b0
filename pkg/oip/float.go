package oip

import "strconv"

func appendFloat32(b []byte, f float64) []byte {
	return strconv.AppendFloat(b, f, 'g', -1, 32)
}
