/**
 * Everything tykdr takes from the AWS SDK's S3 client (s3-sdk.ts types `sdk` with these names only, so a name used
 * but not listed is a compile error). bin/bundle.js bundles just these into dist/bundle/s3-sdk.cjs, from the SDK's
 * ES module build, where esbuild can leave out the client's other commands and their schemas: 729 KB instead of
 * 987 KB, and 42-48 ms instead of 59-66 ms to load and make a client without a code cache (bench/README.md).
 */
export const S3_SDK_NAMES = [
  'AbortMultipartUploadCommand',
  'CompleteMultipartUploadCommand',
  'CreateMultipartUploadCommand',
  'DeleteObjectCommand',
  'GetObjectCommand',
  'GetObjectLockConfigurationCommand',
  'HeadBucketCommand',
  'HeadObjectCommand',
  'ListMultipartUploadsCommand',
  'ListObjectVersionsCommand',
  'ListObjectsV2Command',
  'ListPartsCommand',
  'PutObjectCommand',
  'S3Client',
  'S3ServiceException',
  'UploadPartCommand',
] as const;

export type S3SdkName = (typeof S3_SDK_NAMES)[number];
