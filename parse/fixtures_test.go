package parse

import "net/http"

// Realistic response bodies used across the tests, fuzz seeds and benchmarks.
const (
	// seedJSON is the JSON response of seed 002 ("JSON Response Parsing").
	seedJSON = `{
  "status": "success",
  "data": {
    "validated": true,
    "score": 85,
    "details": {
      "email_valid": true,
      "phone_valid": true,
      "address_confirmed": false
    }
  },
  "meta": {
    "request_id": "abc123",
    "processing_time": 0.234
  }
}
`

	// richJSON exercises gjson queries, nulls, big integers and arrays.
	richJSON = `{
  "data": {"items": [{"id": 1, "name": "basic"}, {"id": 2, "name": "premium"}], "empty": []},
  "friends": [
    {"first": "Dale", "last": "Murphy", "age": 44},
    {"first": "Roger", "last": "Craig", "age": 68},
    {"first": "Jane", "last": "Murphy", "age": 47}
  ],
  "lead_id": 9007199254740993,
  "price": "45.00",
  "accepted": "yes",
  "note": null,
  "padded": "  keep me  "
}`

	// seedXML is the XML response of seed 002 ("XML Response Parsing").
	seedXML = `<ValidateResponse>
  <Status>Success</Status>
  <Result>
    <Valid>true</Valid>
    <Score>85</Score>
    <EmailStatus>valid</EmailStatus>
    <PhoneStatus>valid</PhoneStatus>
  </Result>
</ValidateResponse>
`

	// soapXML is a SOAP 1.1 envelope with a custom namespace for the payload.
	soapXML = `<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
               xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <soap:Header>
    <h:Trace xmlns:h="http://partner.com/headers">req-77</h:Trace>
  </soap:Header>
  <soap:Body>
    <v:ValidateResponse xmlns:v="http://partner.com/leads">
      <v:Result>
        <v:Valid>true</v:Valid>
        <v:Score>85</v:Score>
        <v:Message><![CDATA[Lead <b>accepted</b>]]></v:Message>
        <v:Flags>
          <v:Flag code="A1">duplicate</v:Flag>
          <v:Flag code="B2">risky</v:Flag>
        </v:Flags>
      </v:Result>
    </v:ValidateResponse>
  </soap:Body>
</soap:Envelope>`

	// soapOtherPrefixes is the same payload written with the partner's own prefixes;
	// XPath matches by namespace URI, so the step's soap:/v: prefixes still apply.
	soapOtherPrefixes = `<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body>
<ns2:ValidateResponse xmlns:ns2="http://partner.com/leads"><ns2:Result><ns2:Valid>false</ns2:Valid><ns2:Score>12</ns2:Score></ns2:Result></ns2:ValidateResponse>
</env:Body></env:Envelope>`

	// soapFault is a SOAP 1.1 fault.
	soapFault = `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
<soap:Fault><faultcode>soap:Client</faultcode><faultstring>Invalid API key</faultstring></soap:Fault>
</soap:Body></soap:Envelope>`

	// defaultNSXML puts every element in a default namespace (xmlns="...").
	defaultNSXML = `<?xml version="1.0"?>
<LeadResult xmlns="http://partner.com/v2/leads">
  <Status>accepted</Status>
  <Id>991</Id>
</LeadResult>`

	seedText  = "SUCCESS|85|VALID|ABC123\n"
	seedRegex = "Lead accepted with ID: 12345 and price: $45.00"
)

func soapNS() Namespaces {
	return Namespaces{
		"soap": "http://schemas.xmlsoap.org/soap/envelope/",
		"v":    "http://partner.com/leads",
	}
}

func defaultNS() Namespaces { return Namespaces{"d": "http://partner.com/v2/leads"} }

func jsonResp(body string) Response {
	return Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)}
}

func xmlResp(body string) Response {
	return Response{Status: 200, Header: http.Header{"Content-Type": {"text/xml; charset=utf-8"}}, Body: []byte(body)}
}

func textResp(body string) Response {
	return Response{Status: 200, Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte(body)}
}

func ptr[T any](v T) *T { return &v }
