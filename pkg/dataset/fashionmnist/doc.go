// Package fashionmnist reads the Fashion-MNIST data set (Xiao et al. 2017:
// 28×28 grey images of clothes in 10 classes) from its IDX files, gzipped
// or not, as shipped by the Debian package dataset-fashion-mnist under
// /usr/share/datasets/fashion-mnist. The load generator sends these images
// and compares the served argmax with the label, so the accuracy it reports
// is the accuracy of the answers actually served; the model server's tests
// reuse the reader.
package fashionmnist
