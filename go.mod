module github.com/lwm2md/lwm2md

go 1.24
