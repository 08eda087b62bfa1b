module github.com/galleta-go/galleta

go 1.26
