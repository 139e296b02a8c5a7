// A tiny HTTP server; -check starts it on a free port, fetches / once and exits.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
)

func handler(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintln(w, "hello from imgscope goapp")
}

func main() {
	check := flag.Bool("check", false, "serve one request to itself and exit")
	flag.Parse()
	http.HandleFunc("/", handler)
	if !*check {
		log.Fatal(http.ListenAndServe(":8080", nil))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, nil)
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	os.Stdout.Write(body)
}
