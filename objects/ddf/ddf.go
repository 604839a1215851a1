// Package ddf loads OMA LwM2M object definitions (DDF XML, the LWM2M.xsd
// and LWM2M-v1_1.xsd schemas) into objects.ObjectDef values.
package ddf

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/lwm2md/lwm2md/objects"
)

// ErrNotDDF marks an XML file that is not an object definition file (the
// registry folder also holds DDF.xml, an index, and Common.xml, a list of
// reusable resources); LoadDir skips such files.
var ErrNotDDF = errors.New("not an LwM2M object definition file")

type xmlRoot struct {
	XMLName xml.Name    `xml:"LWM2M"`
	Objects []xmlObject `xml:"Object"`
}

type xmlObject struct {
	ObjectType   string    `xml:"ObjectType,attr"`
	Name         string    `xml:"Name"`
	Description1 string    `xml:"Description1"`
	Description2 string    `xml:"Description2"`
	ObjectID     string    `xml:"ObjectID"`
	ObjectURN    string    `xml:"ObjectURN"`
	LwM2MVersion string    `xml:"LWM2MVersion"`
	Version      string    `xml:"ObjectVersion"`
	Multiple     string    `xml:"MultipleInstances"`
	Mandatory    string    `xml:"Mandatory"`
	Items        []xmlItem `xml:"Resources>Item"`
}

type xmlItem struct {
	ID          string `xml:"ID,attr"`
	Name        string `xml:"Name"`
	Operations  string `xml:"Operations"`
	Multiple    string `xml:"MultipleInstances"`
	Mandatory   string `xml:"Mandatory"`
	Type        string `xml:"Type"`
	Range       string `xml:"RangeEnumeration"`
	Units       string `xml:"Units"`
	Description string `xml:"Description"`
}

// Parse reads one DDF document. name is used in errors (a file name).
func Parse(name string, r io.Reader) ([]*objects.ObjectDef, error) {
	var root xmlRoot
	dec := xml.NewDecoder(r)
	if err := dec.Decode(&root); err != nil {
		var se xml.UnmarshalError
		if errors.As(err, &se) || strings.Contains(err.Error(), "expected element type <LWM2M>") {
			return nil, fmt.Errorf("ddf: %s: %w", name, ErrNotDDF)
		}
		return nil, fmt.Errorf("ddf: %s: %w", name, err)
	}
	var defs []*objects.ObjectDef
	for i, xo := range root.Objects {
		if xo.ObjectType != "" && xo.ObjectType != "MODefinition" {
			return nil, fmt.Errorf("ddf: %s: %w (ObjectType %q)", name, ErrNotDDF, xo.ObjectType)
		}
		d, err := convertObject(xo)
		if err != nil {
			return nil, fmt.Errorf("ddf: %s: Object[%d]: %w", name, i, err)
		}
		defs = append(defs, d)
	}
	if len(defs) == 0 {
		return nil, fmt.Errorf("ddf: %s: no <Object> element", name)
	}
	return defs, nil
}

// ParseFile reads one DDF file.
func ParseFile(path string) ([]*objects.ObjectDef, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ddf: %w", err)
	}
	defer f.Close()
	return Parse(path, f)
}

func convertObject(xo xmlObject) (*objects.ObjectDef, error) {
	id, err := parseID(xo.ObjectID)
	if err != nil {
		return nil, fmt.Errorf("<ObjectID>: %w", err)
	}
	d := &objects.ObjectDef{
		ID:           id,
		Name:         strings.TrimSpace(xo.Name),
		Description:  strings.TrimSpace(xo.Description1),
		Version:      strings.TrimSpace(xo.Version),
		LwM2MVersion: strings.TrimSpace(xo.LwM2MVersion),
		URN:          strings.TrimSpace(xo.ObjectURN),
	}
	if d.Version == "" {
		d.Version = "1.0" // LWM2M.xsd (1.0) has no ObjectVersion element
	}
	if _, err := objects.ParseVersion(d.Version); err != nil {
		return nil, fmt.Errorf("object %d: <ObjectVersion>: %w", id, err)
	}
	if d.Multiple, err = parseMultiple(xo.Multiple); err != nil {
		return nil, fmt.Errorf("object %d: <MultipleInstances>: %w", id, err)
	}
	if d.Mandatory, err = parseMandatory(xo.Mandatory); err != nil {
		return nil, fmt.Errorf("object %d: <Mandatory>: %w", id, err)
	}
	for _, it := range xo.Items {
		r, err := convertItem(it)
		if err != nil {
			return nil, fmt.Errorf("object %d: <Item ID=%q>: %w", id, it.ID, err)
		}
		d.Resources = append(d.Resources, r)
	}
	if err := d.SortResources(); err != nil {
		return nil, err
	}
	return d, nil
}

func convertItem(it xmlItem) (objects.ResourceDef, error) {
	var r objects.ResourceDef
	var err error
	if r.ID, err = parseID(it.ID); err != nil {
		return r, fmt.Errorf("ID attribute: %w", err)
	}
	r.Name = strings.TrimSpace(it.Name)
	if r.Operations, err = objects.ParseOperations(it.Operations); err != nil {
		return r, fmt.Errorf("<Operations>: %w", err)
	}
	if r.Multiple, err = parseMultiple(it.Multiple); err != nil {
		return r, fmt.Errorf("<MultipleInstances>: %w", err)
	}
	if r.Mandatory, err = parseMandatory(it.Mandatory); err != nil {
		return r, fmt.Errorf("<Mandatory>: %w", err)
	}
	if r.Type, err = objects.ParseType(it.Type); err != nil {
		return r, fmt.Errorf("<Type>: %w", err)
	}
	r.Range = strings.TrimSpace(it.Range)
	r.Units = strings.TrimSpace(it.Units)
	r.Description = strings.TrimSpace(it.Description)
	return r, nil
}

func parseID(s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%q is not an ID from 0 to 65535", s)
	}
	return uint16(n), nil
}

func parseMultiple(s string) (bool, error) {
	switch strings.TrimSpace(s) {
	case "Multiple":
		return true, nil
	case "Single":
		return false, nil
	}
	return false, fmt.Errorf("%q is neither Single nor Multiple", s)
}

func parseMandatory(s string) (bool, error) {
	switch strings.TrimSpace(s) {
	case "Mandatory":
		return true, nil
	case "Optional":
		return false, nil
	}
	return false, fmt.Errorf("%q is neither Mandatory nor Optional", s)
}

// LoadDir reads every *.xml file in dir and its sub-folders. Files that
// are not object definitions (ErrNotDDF) are skipped; any other broken
// file stops the load with an error that names it.
func LoadDir(dir string) ([]*objects.ObjectDef, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.EqualFold(filepath.Ext(p), ".xml") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ddf: %w", err)
	}
	sort.Strings(files)
	var all []*objects.ObjectDef
	for _, f := range files {
		defs, err := ParseFile(f)
		if errors.Is(err, ErrNotDDF) {
			continue
		}
		if err != nil {
			return nil, err
		}
		all = append(all, defs...)
	}
	return all, nil
}

// LoadInto reads dir and adds every definition to reg, returning how many
// (object, version) definitions it added.
func LoadInto(reg *objects.Registry, dir string) (int, error) {
	defs, err := LoadDir(dir)
	if err != nil {
		return 0, err
	}
	for _, d := range defs {
		if err := reg.Add(d); err != nil {
			return 0, fmt.Errorf("ddf: %s: %w", dir, err)
		}
	}
	return len(defs), nil
}
