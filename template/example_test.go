package template_test

import (
	"fmt"

	"github.com/plumbhq/plumb/template"
)

func ExampleSet_Compile() {
	set := template.New()

	url, err := set.Compile("url", "{{settings.base_url}}/v2/leads/{{lead.state}}/validate?phone={{ lead.phone | digits }}", template.URL)
	if err != nil {
		panic(err)
	}
	verified, err := set.Compile("verified", "{{lead.email_valid}}", template.JSON)
	if err != nil {
		panic(err)
	}

	data := map[string]any{
		"settings": map[string]any{"base_url": "https://api.example.com"},
		"lead":     map[string]any{"state": "CA/NV", "phone": "(555) 123-4567", "email_valid": true},
	}
	s, _ := url.Render(data)
	fmt.Println(s)
	fmt.Println(url.Refs())

	v, _ := verified.Value(data)
	fmt.Printf("%T %v\n", v, v)

	_, err = url.Render(map[string]any{"settings": data["settings"], "lead": map[string]any{}})
	fmt.Println(err)
	// Output:
	// https://api.example.com/v2/leads/CA%2FNV/validate?phone=5551234567
	// [settings.base_url lead.state lead.phone]
	// bool true
	// template url: lead.state is missing
}
