module github.com/galleta-go/galleta/bench

go 1.26

require github.com/galleta-go/galleta v0.0.0

require github.com/alexedwards/scs/v2 v2.9.0

replace github.com/galleta-go/galleta => ../
