
à
example/v1/example.proto
example.v1"(

AddRequest
a (Ra
b (Rb"
AddResponse
sum (Rsum"I
WatchRequest
symbols (	Rsymbols
interval_ms (R
intervalMs"Q
Quote
symbol (	Rsymbol
price (Rprice
sequence (Rsequence2D

Calculator6
Add.example.v1.AddRequest.example.v1.AddResponse2@
Ticker6
Watch.example.v1.WatchRequest.example.v1.Quote0B?Z=github.com/cometgate/cometgate/proto/gen/example/v1;examplev1bproto3