import { describe, expect, it } from 'vitest';
import { checkSelection, displayKeyName, globToRegExp, KeySelector, type KeySelection } from '../../src/core/tyk/key-selection.js';
import { stringValueOf } from '../../src/backends/redis/formats/string-value.js';
import { buildPayload } from '../../src/backends/redis/formats/dump-payload.js';
import { TykdrError } from '../../src/core/errors.js';

const sel = (s: Partial<KeySelection>): KeySelection => ({ patterns: [], classes: [], orgs: [], apis: [], overwrite: false, ...s });
const k = (s: string) => Buffer.from(s);
const session = (org: string, apis: string[]) => k(JSON.stringify({ org_id: org, access_rights: Object.fromEntries(apis.map((a) => [a, { api_id: a }])) }));

describe('key selection', () => {
  it('globs follow Redis: * ? [set] [^set] [a-z] and escapes', () => {
    expect(globToRegExp('apikey-*').test('apikey-abc')).toBe(true);
    expect(globToRegExp('apikey-*').test('xapikey-abc')).toBe(false);
    expect(globToRegExp('a?c').test('abc')).toBe(true);
    expect(globToRegExp('a?c').test('abbc')).toBe(false);
    expect(globToRegExp('k[0-2]').test('k1')).toBe(true);
    expect(globToRegExp('k[^0-2]').test('k1')).toBe(false);
    expect(globToRegExp('oauth-data.a.b').test('oauth-dataXa.b')).toBe(false);
    expect(globToRegExp('x\\*').test('x*')).toBe(true);
    expect(globToRegExp('x\\*').test('xy')).toBe(false);
  });

  it('bad flag values are refused, naming the value and the fix', () => {
    const e = (() => {
      try {
        checkSelection(sel({ classes: ['musts' as never] }));
      } catch (err) {
        return err as TykdrError;
      }
    })();
    expect(e).toBeInstanceOf(TykdrError);
    expect(e!.message).toContain('"musts"');
    expect(e!.fix).toContain('must, should');
    expect(() => checkSelection(sel({ patterns: ['a[b'] }))).toThrow(/without its "]"/);
    expect(() => checkSelection(sel({ orgs: ['a b'] }))).toThrow(/--org "a b"/);
  });

  it('classes default to the restored classes; --class replaces them', () => {
    const base = new KeySelector(sel({}), ['must', 'should', 'other']);
    expect(base.byName(k('apikey-1'))).toBe('yes');
    expect(base.byName(k('quota-1'))).toBe('no');
    const q = new KeySelector(sel({ classes: ['quota'] }), ['must']);
    expect(q.byName(k('quota-1'))).toBe('yes');
    expect(q.byName(k('apikey-1'))).toBe('no');
  });

  it('--org decides by name where Tyk puts the org in it, else by the session value', () => {
    const s = new KeySelector(sel({ orgs: ['orgA'] }), ['must', 'should', 'other']);
    expect(s.byName(k('orgkey.orgA'))).toBe('yes');
    expect(s.byName(k('orgkey.orgB'))).toBe('no');
    expect(s.byName(k('cert-raw-orgAdeadbeef'))).toBe('yes');
    expect(s.byName(k('cert-raw-orgBdeadbeef'))).toBe('no');
    expect(s.byName(k('cert-orgA-index'))).toBe('yes');
    expect(s.byName(k('oauth-data.api1.oauth-client-index.orgA'))).toBe('yes');
    expect(s.byName(k('oauth-data.api1.oauth-client-index.orgB'))).toBe('no');
    // OAuth clients hold no org id: --org alone leaves them out.
    expect(s.byName(k('oauth-data.api1.oauth-clientid.c1'))).toBe('no');
    expect(s.byName(k('apikey-1'))).toBe('value');
    expect(s.byValue(k('apikey-1'), session('orgA', ['api1']))).toBe(true);
    expect(s.byValue(k('apikey-1'), session('orgB', ['api1']))).toBe(false);
    expect(s.byValue(k('apikey-1'), k('not json'))).toBe(false);
    expect(s.byValue(k('apikey-1'), null)).toBe(false);
  });

  it('--api decides by oauth-data.<api>. names, else by access_rights; with --org both must match', () => {
    const s = new KeySelector(sel({ apis: ['api1'] }), ['must', 'should', 'other']);
    expect(s.byName(k('oauth-data.api1.oauth-clientid.c1'))).toBe('yes');
    expect(s.byName(k('oauth-data.api10.oauth-clientid.c1'))).toBe('no');
    expect(s.byName(k('cert-raw-orgA1'))).toBe('no');
    expect(s.byValue(k('apikey-1'), session('orgA', ['api2', 'api1']))).toBe(true);
    expect(s.byValue(k('apikey-1'), session('orgA', ['api2']))).toBe(false);
    const both = new KeySelector(sel({ apis: ['api1'], orgs: ['orgA'] }), ['must', 'should', 'other']);
    expect(both.byName(k('oauth-data.api1.oauth-clientid.c1'))).toBe('yes');
    expect(both.byValue(k('apikey-1'), session('orgA', ['api1']))).toBe(true);
    expect(both.byValue(k('apikey-1'), session('orgB', ['api1']))).toBe(false);
    expect(both.byValue(k('apikey-1'), session('orgA', ['api2']))).toBe(false);
  });

  it('names that carry a credential are shown as Tyk logs them', () => {
    expect(displayKeyName('apikey-0123456789abcdef')).toBe('apikey-****cdef');
    expect(displayKeyName('oauth-data.api1.oauth-access.tok-123456789')).toBe('oauth-data.api1.oauth-access.****6789');
    expect(displayKeyName('oauth-data.api1.oauth-clientid.c1')).toBe('oauth-data.api1.oauth-clientid.c1');
    expect(displayKeyName('apikey-ab')).toBe('apikey-****');
  });
});

describe('string values from DUMP payloads', () => {
  const rdbString = (enc: Buffer) => buildPayload(0, enc, 10);
  it('raw, integer and LZF encodings', () => {
    expect(stringValueOf(rdbString(Buffer.concat([Buffer.from([5]), k('hello')])), 100)?.toString()).toBe('hello');
    expect(stringValueOf(rdbString(Buffer.from([0xc0, 0xfe])), 100)?.toString()).toBe('-2');
    const i16 = Buffer.from([0xc1, 0, 0]);
    i16.writeInt16LE(12345, 1);
    expect(stringValueOf(rdbString(i16), 100)?.toString()).toBe('12345');
    const i32 = Buffer.from([0xc2, 0, 0, 0, 0]);
    i32.writeInt32LE(-7654321, 1);
    expect(stringValueOf(rdbString(i32), 100)?.toString()).toBe('-7654321');
    // LZF: "aaaaaaaaaa" = literal "a" (ctrl 0), then a back reference of 9 at offset 1 (len 7 => ctrl 0xe0, extra 0).
    const lzf = Buffer.from([0, 0x61, 0xe0, 0x00, 0x00]);
    expect(stringValueOf(rdbString(Buffer.concat([Buffer.from([0xc3, lzf.length, 10]), lzf])), 100)?.toString()).toBe('aaaaaaaaaa');
  });
  it('other types, or strings over the limit, are not decoded', () => {
    expect(stringValueOf(buildPayload(2, Buffer.from([0]), 10), 100)).toBeNull();
    expect(stringValueOf(rdbString(Buffer.concat([Buffer.from([5]), k('hello')])), 4)).toBeNull();
  });
});
