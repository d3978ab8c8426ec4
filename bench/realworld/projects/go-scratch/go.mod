module example.com/kiln-rw/go-scratch

go 1.19
