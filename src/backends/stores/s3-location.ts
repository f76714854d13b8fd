/** An S3 store's key prefix (always ending in "/" unless empty) and its display location, without the SDK. */
export function s3Prefix(prefix: string): string {
  return prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
}

export function s3Location(bucket: string, prefix: string): string {
  return `s3://${bucket}/${s3Prefix(prefix)}`;
}
